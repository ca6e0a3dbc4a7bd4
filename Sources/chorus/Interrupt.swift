import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// Ctrl-C or SIGTERM during a long run: the run stops at its next check and still writes its
/// files. A second signal runs `onSecond` (e.g. kill every child at once) for the impatient.
final class Interrupt {
    private let name = NIOLockedValueBox<String?>(nil)
    /// Kept alive for the run: a released source stops delivering.
    private let sources: [DispatchSourceSignal]

    init(onSecond: (@Sendable () -> Void)? = nil) {
        let queue = DispatchQueue(label: "chorus.signals")
        var sources: [DispatchSourceSignal] = []
        let name = self.name
        for (number, label) in [(SIGINT, "Ctrl-C"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                let first = name.withLockedValue { current -> Bool in
                    defer { current = current ?? label }
                    return current == nil
                }
                if !first, let onSecond {
                    FileHandle.standardError.write(Data("\nsecond \(label): stopping at once\n".utf8))
                    onSecond()
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    var requested: Bool { name.withLockedValue { $0 != nil } }
    var signalName: String? { name.withLockedValue { $0 } }
}
