import ArgumentParser

/// Refuses a number no run can use, naming the option: NaN, an infinity (`--duration inf` used
/// to trap where seconds become step counts), or a value outside `range`. Options that take
/// such numbers parse their value `.unconditional`ly, so `--duration -5` is read as -5 and
/// refused here, rather than taken for an option and reported as a missing value.
func checkNumber(_ value: Double, option: String, in range: ClosedRange<Double>, excludingLower: Bool = false, unit: String = "") throws {
    guard value.isFinite, range.contains(value), !(excludingLower && value == range.lowerBound) else {
        let interval = "\(excludingLower ? "(" : "[")\(plain(range.lowerBound)), \(plain(range.upperBound))]"
        throw ValidationError("\(option) must be a finite number\(unit.isEmpty ? "" : " of \(unit)") in \(interval), got \(plain(value))")
    }
}

/// 5, not 5.0; 0.25 as it is.
private func plain(_ value: Double) -> String {
    value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

/// The longest run any command accepts: about eleven and a half days, simulated or real.
let maxRunSeconds = 1_000_000.0
