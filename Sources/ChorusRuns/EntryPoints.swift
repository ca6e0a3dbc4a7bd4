/// Where a joining or restarting peer is pointed, the same in `chorus simulate` and
/// `chorus experiment`: as an operator would, at `count` peers picked at random among those that
/// are part of the network (settled: training, not alone, their own join answered); among any
/// live peers only when none is settled.
///
/// Both halves were found by `chorus simulate fuzz` (generator version 8): a single entry point
/// that crashed before a joiner got through at 27 % loss left that joiner alone for good (seed
/// 1987), and joiners pointed at newcomers that were still joining themselves formed an island
/// that no protocol could join to the rest, since none of them knew a way out (seed 1850).
public enum EntryPoints {
    public static let count = 2

    public static func pick(from candidates: [Int], settled: (Int) -> Bool,
                            using rng: inout some RandomNumberGenerator) -> [Int] {
        let settledOnes = candidates.filter(settled)
        return Schedule.Target.count(count).pick(from: settledOnes.isEmpty ? candidates : settledOnes, using: &rng)
    }
}
