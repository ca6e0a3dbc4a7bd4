import ChorusCrypto
import ChorusPeer
import FuzzSupport

/// libFuzzer target `checkpoint`: `Checkpoint.decode`, what a restarted peer reads from disk.
///
/// The input is a checkpoint file without its last 32 bytes (the BLAKE2b-256 of the rest): it is
/// decoded as it is (nearly always refused at the checksum) and again with the checksum
/// recomputed, so the fuzzer reaches the fields behind it, as a file written by someone who
/// knows the format would. Checked: a checkpoint that decodes is the one encoding of what it
/// decoded to (`encoded()` gives the file back).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? Checkpoint.decode(body)
    let file = body + (try! Blake2b.hash(body, outputLength: 32))
    guard let checkpoint = try? Checkpoint.decode(file) else { return 0 }
    Fuzz.check(checkpoint.encoded() == file, "a checkpoint that decodes encodes to other bytes")
    Fuzz.check(checkpoint.parameters.allSatisfy(\.isFinite), "a checkpoint with non-finite parameters decoded")
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        func seed(_ c: Checkpoint) -> [UInt8] { Array(c.encoded().dropLast(32)) }
        return [
            ("softmax", seed(Checkpoint(model: "softmax", steps: 1200, epoch: 1_800_000_000, parameters: (0..<40).map { Float($0) / 7 - 2 }))),
            ("mlp", seed(Checkpoint(model: "mlp:8:relu", steps: 0, epoch: 1, parameters: [0.5, -0.25, 1e-30, 3e30]))),
            ("empty", seed(Checkpoint(model: "", steps: 0, epoch: 0, parameters: []))),
        ]
    } valid: { body in
        (try? Checkpoint.decode(body + (try! Blake2b.hash(body, outputLength: 32)))) != nil
    }
    return 0
}
