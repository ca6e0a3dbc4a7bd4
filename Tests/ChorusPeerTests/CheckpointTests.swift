import Foundation
import Testing
import ChorusAveraging
import ChorusCore
@testable import ChorusPeer

@Test("a checkpoint round-trips, and any damage is detected")
func checkpointRoundTrip() throws {
    let checkpoint = Checkpoint(model: "mlp:64", steps: 1234, epoch: 7, parameters: (0..<1000).map { Float($0) * 0.5 - 3 })
    let bytes = checkpoint.encoded()
    #expect(try Checkpoint.decode(bytes) == checkpoint)
    for position in stride(from: 0, to: bytes.count, by: 97) {
        var damaged = bytes
        damaged[position] ^= 0x10
        #expect(throws: Checkpoint.DecodeError.self) { try Checkpoint.decode(damaged) }
    }
    #expect(throws: Checkpoint.DecodeError.self) { try Checkpoint.decode(Array(bytes.dropLast(1))) }
}

@Test("a peer saves its checkpoint and a new learner resumes from it")
func saveAndResume() throws {
    let s = try Scratch()
    let config = try PeerConfig.load(path: s.write(s.config()))
    var (_, _, learner, _) = try PeerRunner.prepare(config: config)
    _ = learner.train(steps: 50)
    let saved = Checkpoint(model: config.model.description, steps: learner.steps, epoch: learner.epoch, parameters: learner.parameters)
    try saved.save(to: config.checkpointPath)
    let (_, _, resumed, _) = try PeerRunner.prepare(config: config)
    #expect(resumed.steps == 50)
    #expect(resumed.parameters == learner.parameters)
    #expect(resumed.evaluate().accuracy == learner.evaluate().accuracy)
    // A checkpoint of another model is refused with the file named.
    try Checkpoint(model: "mlp:64", steps: 1, epoch: 0, parameters: [1, 2]).save(to: config.checkpointPath)
    do {
        _ = try PeerRunner.prepare(config: config)
        Issue.record("accepted a checkpoint of another model")
    } catch {
        #expect("\(error)".contains(config.checkpointPath) && "\(error)".contains("mlp:64"))
    }
}

@Test("boot epochs strictly increase across restarts, even when the clock goes backwards")
func bootEpochs() throws {
    let s = try Scratch()
    let file = s.path + "/state/peer.epoch"
    let first = try BootEpoch.next(stateFile: file, now: Date(timeIntervalSince1970: 2_000_000_000))
    let second = try BootEpoch.next(stateFile: file, now: Date(timeIntervalSince1970: 1_000))
    let third = try BootEpoch.next(stateFile: file, now: Date(timeIntervalSince1970: 2_000_000_000))
    #expect(first == 2_000_000_000)
    #expect(second == first + 1)
    #expect(third == second + 1)
    try FileManager.default.removeItem(atPath: file)
    #expect(try BootEpoch.next(stateFile: file, now: Date(timeIntervalSince1970: 3_000_000_000)) == 3_000_000_000)
}

@Test("parameter messages decode strictly, plain and push-sum", arguments: [
    ParametersMessage(round: 5, step: 9, degree: 3, parameters: [1, -2, .pi]),
    ParametersMessage(round: 5, step: 9, degree: 3, values: [1, -2, .pi], float64: true),
    ParametersMessage(round: 5, step: 9, degree: 3, stream: StreamID(epoch: 7, counter: 1), sequence: 3, weight: 0.25,
                      values: [1, -2, .pi], float64: true),
])
func parametersMessage(message: ParametersMessage) {
    let bytes = message.encoded()
    #expect(ParametersMessage.decode(bytes) == message)
    #expect(ParametersMessage.decode(bytes + [0]) == nil)
    #expect(ParametersMessage.decode(Array(bytes.dropLast())) == nil)
    var version = bytes; version[0] = 1  // version 1 (one round late, float32 only) is refused
    #expect(ParametersMessage.decode(version) == nil)
    var flags = bytes; flags[1] |= 4  // an unknown flag
    #expect(ParametersMessage.decode(flags) == nil)
    if message.stream != nil {
        var float32 = bytes; float32[1] &= ~2  // push-sum running sums only travel as float64
        #expect(ParametersMessage.decode(float32) == nil)
    }
    #expect(ParametersMessage.decode([]) == nil)
}

@Test("relative distance to the average is zero in consensus and scale-free")
func consensusDistance() {
    #expect(Consensus.relativeDistances([[1, 2], [1, 2]] as [[Float]]) == [0, 0])
    let d = Consensus.relativeDistances([[0, 0], [2, 0]] as [[Float]])
    #expect(d == [1, 1])
    let scaled = Consensus.relativeDistances([[0, 0], [200, 0]] as [[Float]])
    #expect(scaled == d)
}

@Test("a damaged epoch file is an error naming it, never a crash", arguments: ["18446744073709551615", "281474976710655", "-3", "twelve", ""])
func damagedEpochFile(content: String) throws {
    let s = try Scratch()
    let file = s.path + "/peer.epoch"
    try content.write(toFile: file, atomically: true, encoding: .utf8)
    do {
        let epoch = try BootEpoch.next(stateFile: file)
        Issue.record("accepted \"\(content)\" and started at epoch \(epoch)")
    } catch {
        #expect("\(error)".contains(file) && "\(error)".contains("move it away"), "\(error)")
    }
    // The largest epoch that still leaves room is accepted.
    try "\(BootEpoch.limit - 3)".write(toFile: file, atomically: true, encoding: .utf8)
    #expect(try BootEpoch.next(stateFile: file) == BootEpoch.limit - 2)
}

@Test("a checkpoint with an impossible step count or a NaN parameter is refused with the reason, never resumed")
func damagedCheckpointValues() throws {
    for (checkpoint, reason) in [
        (Checkpoint(model: "softmax", steps: .max, epoch: 1, parameters: [1, 2]), "beyond any real run"),
        (Checkpoint(model: "softmax", steps: 5, epoch: .max, parameters: [1, 2]), "beyond any real run"),
        (Checkpoint(model: "softmax", steps: 5, epoch: 1, parameters: [1, .nan]), "NaN"),
    ] {
        do {
            _ = try Checkpoint.decode(checkpoint.encoded())
            Issue.record("accepted \(checkpoint.steps) steps, epoch \(checkpoint.epoch), \(checkpoint.parameters)")
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
        }
    }
}

@Test("temporaries left by killed peers are removed; those of live processes and of other paths are kept")
func staleTemporaries() throws {
    let s = try Scratch()
    let path = s.path + "/state/p0.checkpoint"
    try FileManager.default.createDirectory(atPath: s.path + "/state", withIntermediateDirectories: true)
    // A process that has exited: its pid is free (pid_max is at most 2^22, so this one never ran).
    let dead: Int32 = 99_999_999
    let live = getppid()  // the process that started the tests
    let names = ["p0.checkpoint.tmp-\(dead)", "p0.checkpoint.epoch.tmp-\(dead)", "p0.checkpoint.tmp-\(live)", "p0.checkpoint.tmp-\(getpid())",
                 "p1.checkpoint.tmp-\(dead)", "p0.checkpoint.tmp-abc", "p0.checkpoint"]
    for name in names { FileManager.default.createFile(atPath: s.path + "/state/" + name, contents: Data([1])) }
    #expect(AtomicFile.removeStaleTemporaries(of: path) == [s.path + "/state/p0.checkpoint.tmp-\(dead)"])
    #expect(AtomicFile.removeStaleTemporaries(of: path + ".epoch") == [s.path + "/state/p0.checkpoint.epoch.tmp-\(dead)"])
    let left = try FileManager.default.contentsOfDirectory(atPath: s.path + "/state").sorted()
    #expect(left == names.dropFirst(2).sorted())
    #expect(AtomicFile.removeStaleTemporaries(of: s.path + "/nowhere/p0.checkpoint").isEmpty)
}

@Test("a peer started after a kill during a checkpoint write removes the temporary it left")
func staleTemporaryRemovedAtStart() throws {
    let s = try Scratch()
    let file = s.write(s.config(bind: "127.0.0.1:\(try FreePort.udp())", admin: "127.0.0.1:\(try FreePort.tcp())"))
    let config = try PeerConfig.load(path: file)
    try FileManager.default.createDirectory(atPath: (config.checkpointPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let stale = AtomicFile.temporary(of: config.checkpointPath, pid: 99_999_999)
    FileManager.default.createFile(atPath: stale, contents: Data(repeating: 7, count: 100))
    let process = try ChorusBinary.start(["peer", "--config", file])
    defer {
        process.terminate()
        process.waitUntilExit()
    }
    let deadline = Date().addingTimeInterval(20)
    while FileManager.default.fileExists(atPath: stale) && Date() < deadline { usleep(50_000) }
    #expect(!FileManager.default.fileExists(atPath: stale))
}
