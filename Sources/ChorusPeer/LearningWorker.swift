import ChorusCore
import ChorusLearning
import Dispatch
import NIOCore
import NIOPosix

/// Where a `PeerNode`'s learning jobs run. A real process runs them on a thread of their own
/// (`ThreadLearningWorker`), so a slow training step never delays an ack; the in-process tests
/// run them on the event loop's virtual clock, so every run is the same.
protocol LearningWorker {
    /// Starts `job`; the future completes on `loop` with its result and the seconds it took.
    func run(_ job: LearningJob, on loop: EventLoop) -> EventLoopFuture<(result: LearningResult, seconds: Double)>
    /// Takes no more jobs (one under way may still finish).
    func shutdown()
}

/// One thread of its own for learning jobs.
final class ThreadLearningWorker: LearningWorker {
    private let pool = NIOThreadPool(numberOfThreads: 1)

    init() {
        pool.start()
    }

    func run(_ job: LearningJob, on loop: EventLoop) -> EventLoopFuture<(result: LearningResult, seconds: Double)> {
        pool.runIfActive(eventLoop: loop) { () -> (result: LearningResult, seconds: Double) in
            let started = DispatchTime.now().uptimeNanoseconds
            let result = job.run()
            return (result, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        }
    }

    func shutdown() {
        pool.shutdownGracefully { _ in }
    }
}
