import ArgumentParser
import ChorusCrypto
import ChorusWire
#if canImport(Glibc)
import Glibc
#endif

/// CPU seconds used by the calling thread: immune to other processes on a shared machine.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine: the CPU cost of authenticating parameter traffic.",
        discussion: """
            Sends a parameter vector through the real datagram layer (BLAKE2b-256 of the object; \
            by default every datagram sealed with the pair's ChaCha20-Poly1305 keys, or with \
            --no-session-keys under the network key with XChaCha20-Poly1305 and the manifest \
            Ed25519-signed) between two in-process endpoints and reports thread CPU time per MB \
            on each side, with the pure cryptographic costs alongside. Build in release mode for \
            meaningful figures:
              swift run -c release chorus bench
            """
    )

    @Option(help: "Parameters (float32) in the vector.")
    var floats = 4_000_000

    @Option(help: "Repetitions; the median is reported.")
    var repeats = 5

    @Option(help: "Maximum datagram size in bytes.")
    var datagramSize = 1200

    @Flag(inversion: .prefixedNo,
          help: "Per-pair session keys (gossip.session_keys, on by default): objects travel sealed with the pair's keys, manifests unsigned. --no-session-keys: under the network key, manifests signed.")
    var sessionKeys = true

    func validate() throws {
        guard floats > 0, repeats > 0 else { throw ValidationError("--floats and --repeats must be positive") }
    }

    func run() throws {
        var settings = WireSettings()
        settings.maxDatagramSize = datagramSize
        settings.sessionKeys = sessionKeys
        if let problem = settings.problems().first { throw UserError("--datagram-size: \(problem)") }
        let bytes = (0..<floats).map { Float($0 % 1000) * 0.001 }.withUnsafeBytes { Array($0) }
        let megabytes = Double(bytes.count) / 1_000_000
        let network = NetworkKey.generate()
        var sender = WireEndpoint(identity: .generate(), keyring: NetworkKeyring([network]), epoch: 1, settings: settings)
        var receiver = WireEndpoint(identity: .generate(), keyring: NetworkKeyring([network]), epoch: 2, settings: settings)
        // Handshake so that objects flow immediately.
        let hello = sender.send(.message(channel: 0, payload: []), to: receiver.localID, now: 0)
        let reply = receiver.receive(hello[0], now: 0)
        for d in sender.receive(reply.replies[0], now: 0).flushed { _ = receiver.receive(d, now: 0) }

        var sendTimes: [Double] = [], receiveTimes: [Double] = [], datagrams = 0
        for round in 0..<repeats {
            var t = threadCPUSeconds()
            let object = PreparedObject(channel: 1, bytes: bytes)
            let out = sender.send(.object(object), to: receiver.localID, now: Double(round))
            sendTimes.append(threadCPUSeconds() - t)
            datagrams = out.count
            t = threadCPUSeconds()
            var delivered = 0
            for d in out {
                for delivery in receiver.receive(d, now: Double(round)).deliveries {
                    if case .object = delivery { delivered += 1 }
                }
            }
            receiveTimes.append(threadCPUSeconds() - t)
            guard delivered == 1 else { throw UserError("bench: the object was not delivered (rejections: \(receiver.rejections))") }
        }
        // Pure crypto for comparison.
        let hashTime = Self.median((0..<repeats).map { _ in
            let t = threadCPUSeconds(); _ = try? Blake2b.hash(bytes, outputLength: 32); return threadCPUSeconds() - t
        })
        // The sealing each datagram gets: the pair's ChaCha20-Poly1305, or XChaCha20-Poly1305
        // under the network key.
        let nonce = [UInt8](repeating: 0, count: 24)
        let pair = try PairCipher(own: BootKey(), ownID: sender.localID, theirs: BootKey().publicKey, theirID: receiver.localID)
        var scratch = bytes
        let sealTime = Self.median((0..<repeats).map { _ in
            let t = threadCPUSeconds()
            scratch.withUnsafeMutableBytes { all in
                nonce.withUnsafeBytes { n in
                    var start = 0, counter: UInt64 = 0
                    while start < all.count {
                        let end = min(start + settings.maxDatagramSize, all.count)
                        if sessionKeys {
                            let header = PairedDatagram.headerByteCount
                            counter += 1
                            _ = pair.seal(UnsafeMutableRawBufferPointer(rebasing: all[(start + header)..<end]),
                                          header: UnsafeRawBufferPointer(rebasing: all[start..<(start + header)]), counter: counter)
                        } else {
                            _ = network.seal(UnsafeMutableRawBufferPointer(rebasing: all[start..<end]), headerCount: DatagramHeader.byteCount, nonce: n)
                        }
                        start = end
                    }
                }
            }
            return threadCPUSeconds() - t
        })
        let identity = SigningKey.generate()
        let manifestBytes = [UInt8](repeating: 1, count: 127)
        let signTime = Self.median((0..<repeats).map { _ in
            let t = threadCPUSeconds()
            let signature = identity.sign(manifestBytes)
            _ = identity.peerID.verify(signature: signature, of: manifestBytes)
            return threadCPUSeconds() - t
        })
        func perMB(_ s: Double) -> String { String(format: "%.2f ms/MB", s * 1000 / megabytes) }
        print(sessionKeys ? "session keys: objects sealed with the pair's keys (ChaCha20-Poly1305), no signature on the manifest"
                          : "no session keys: objects sealed under the network key (XChaCha20-Poly1305), the manifest signed")
        print("object: \(floats) float32 = \(String(format: "%.1f", megabytes)) MB in \(datagrams) datagrams of ≤ \(datagramSize) bytes; median of \(repeats)")
        print("send    (hash + manifest + chunking + encryption):        \(perMB(Self.median(sendTimes)))")
        print("receive (decryption + replay + reassembly + hash check):  \(perMB(Self.median(receiveTimes)))")
        print("  of which BLAKE2b-256 of the object:                     \(perMB(hashTime))")
        print("  of which \(sessionKeys ? "ChaCha20-Poly1305 " : "XChaCha20-Poly1305") sealing of the bytes:       \(perMB(sealTime))")
        if sessionKeys {
            print("authentication and encryption per side (hash + sealing): \(perMB(hashTime + sealTime)) (target ≤ 3 ms/MB)")
        } else {
            print("authentication and encryption per side (hash + sealing + one Ed25519 sign/verify per object): \(perMB(hashTime + sealTime + signTime)) (target ≤ 3 ms/MB)")
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
