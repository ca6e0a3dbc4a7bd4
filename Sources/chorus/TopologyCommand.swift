import ArgumentParser
import ChorusAveraging
import Foundation

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Print a topology's mixing matrix and how fast it averages: |λ₂|, ‖W − J‖₂, rounds to shrink the error by 10⁶.",
        discussion: """
            Builds the matrix W that all peers apply together in one round when every \
            contribution arrives (x(k+1) = W·x(k); W[i][j] is the share of peer j's value in \
            peer i's new value) and computes its eigenvalues in pure Swift.

            The consensus error shrinks like |λ₂|ᵏ, λ₂ the second-largest eigenvalue in \
            modulus (slem), so a small slem means few rounds: "rounds to 1e-6" is the \
            smallest k with slemᵏ ≤ 10⁻⁶. ‖W − J‖₂ (J = 11ᵀ/n, the exact average) bounds \
            every single round's progress when W is doubly stochastic; it equals slem when W \
            is also symmetric, and can exceed it on directed graphs. slem = 1 means the graph \
            is disconnected or periodic and never averages.

            Plain mixing makes rows sum to one (each receiver takes a weighted mean); push-sum \
            makes columns sum to one (each sender hands out what it has, so the sum is kept). \
            Metropolis–Hastings weights need an undirected graph. The one-peer exponential \
            graph changes every round: it is analysed over one period of ⌈log₂ n⌉ rounds \
            (--round picks the round whose matrix is shown and where the period starts).

            Examples:
              chorus topology --kind exponential --peers 16
              chorus topology --kind ring --peers 16      # slem 1/3 + 2/3·cos(2π/16)
              chorus topology --kind directed-exponential --peers 32 \\
                  --weights uniform --mixing push-sum
              chorus topology --kind one-peer-exponential --peers 8 \\
                  --weights uniform --round 1
              chorus topology --kind random:4:7 --peers 64 --format json

            Matrices above 32 peers are shown in part (the JSON has them whole). The work is \
            O(n³): 1024 peers take seconds in a release build, 4096 minutes.
            """
    )

    @Option(help: ArgumentHelp("Topology: \(Topology.help).", valueName: "kind"))
    var kind: String

    @Option(help: ArgumentHelp("Number of peers, 1–\(Self.maxPeers).", valueName: "n"))
    var peers: Int

    @Option(help: ArgumentHelp("Weight rule: \(WeightRule.help).", valueName: "rule"))
    var weights = WeightRule.metropolisHastings.rawValue

    @Option(help: ArgumentHelp("Mixing: \(MixingMode.help).", valueName: "mode"))
    var mixing = MixingMode.plain.rawValue

    @Option(help: ArgumentHelp("Round whose matrix is shown (time-varying topologies only).", valueName: "t"))
    var round: UInt64 = 0

    @Option(help: ArgumentHelp("Output: table | json.", valueName: "format"))
    var format = "table"

    static let maxPeers = 4096
    /// Above this many peers the computation takes long enough to warrant progress on stderr.
    static let slowPeers = 1024
    /// Matrices with more peers than this are printed in part.
    static let shownPeers = 32
    static let partialPeers = 16

    func validate() throws {
        guard let topology = Topology(parsing: kind) else {
            throw ValidationError("--kind: expected \(Topology.help), got \"\(kind)\"")
        }
        guard (1...Self.maxPeers).contains(peers) else {
            throw ValidationError("--peers must be between 1 and \(Self.maxPeers), got \(peers)")
        }
        guard let rule = WeightRule(parsing: weights) else {
            throw ValidationError("--weights: expected \(WeightRule.help), got \"\(weights)\"")
        }
        if let problem = rule.problem(with: topology) { throw ValidationError("--weights: \(problem)") }
        guard MixingMode(rawValue: mixing.lowercased()) != nil else {
            throw ValidationError("--mixing: expected \(MixingMode.help), got \"\(mixing)\"")
        }
        guard ["table", "json"].contains(format.lowercased()) else {
            throw ValidationError("--format: expected table or json, got \"\(format)\"")
        }
    }

    func run() throws {
        let topology = Topology(parsing: kind)!
        let rule = WeightRule(parsing: weights)!
        let mode = MixingMode(rawValue: mixing.lowercased())!
        let slow = peers > Self.slowPeers
        if slow {
            note("chorus topology: \(peers) peers: the O(n³) eigenvalue computation takes a while (at 4096 peers, a minute or more for symmetric matrices, several for others, in a release build)")
        }
        let w = MixingMatrix.build(topology: topology, count: peers, weights: rule, mixing: mode, round: round)
        let period = topology.period(count: peers)
        let analysis: MixingAnalysis
        do {
            var shown = (stage: "", tenth: -1)
            let progress: ((String, Double) -> Void)? = slow ? { stage, done in
                let tenth = Int(done * 10)
                guard stage != shown.stage || tenth != shown.tenth else { return }
                if stage != shown.stage && !shown.stage.isEmpty { Progress.finish() }
                shown = (stage, tenth)
                Progress.line("  \(stage): \(tenth * 10) %", transient: true)
            } : nil
            if topology.isTimeVarying {
                let product = MixingMatrix.product(topology: topology, count: peers, weights: rule, mixing: mode, from: round, rounds: period)
                analysis = try MixingAnalysis(matrix: w, periodProduct: product, period: period, progress: progress)
            } else {
                analysis = try MixingAnalysis(matrix: w, progress: progress)
            }
            if slow && !shown.stage.isEmpty { Progress.finish() }
        } catch {
            throw UserError("chorus topology: \(error)")
        }
        let adjacency = topology.adjacency(count: peers, round: round)
        if format.lowercased() == "json" {
            print(json(topology: topology, rule: rule, mode: mode, matrix: w, analysis: analysis))
        } else {
            print(table(topology: topology, rule: rule, mode: mode, matrix: w, adjacency: adjacency, analysis: analysis))
        }
    }

    private func note(_ line: String) {
        Progress.line(line, transient: false)
    }

    // MARK: Output

    /// "degree 4", "degree 4–5", or in- and out-degrees for directed graphs.
    static func degrees(_ adjacency: [[Int]], directed: Bool) -> String {
        func span(_ values: [Int]) -> String {
            let (low, high) = (values.min() ?? 0, values.max() ?? 0)
            return low == high ? "\(low)" : "\(low)–\(high)"
        }
        let out = adjacency.map(\.count)
        guard directed else { return "degree \(span(out))" }
        var into = [Int](repeating: 0, count: adjacency.count)
        for list in adjacency { for j in list { into[j] += 1 } }
        return "in-degree \(span(into)), out-degree \(span(out))"
    }

    func table(topology: Topology, rule: WeightRule, mode: MixingMode, matrix w: [[Double]], adjacency: [[Int]], analysis a: MixingAnalysis) -> String {
        let n = w.count
        var lines: [String] = []
        var header = "topology \(topology), \(n) peer\(n == 1 ? "" : "s"), \(rule) weights, \(mode) mixing, \(Self.degrees(adjacency, directed: topology.isDirected))"
        if topology == .torus { header += " (\(Topology.torusShape(n).rows) × \(Topology.torusShape(n).columns))" }
        if topology.isTimeVarying { header += " in round \(round), period \(a.period) rounds" }
        lines.append(header)

        // The matrix, fixed-width columns; "." marks an exact zero (no edge) so the graph shows.
        let shown = n > Self.shownPeers ? Self.partialPeers : n
        let width = 7
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        lines.append("")
        lines.append(n > Self.shownPeers
            ? "W (x(k+1) = W·x(k); row i holds peer i's shares of each peer): the first \(shown) of \(n) rows and columns"
            : "W (x(k+1) = W·x(k); row i holds peer i's shares of each peer):")
        lines.append(cell("") + (0..<shown).map { cell("\($0)") }.joined() + (shown < n ? "  …" : ""))
        for i in 0..<shown {
            let entries = (0..<shown).map { j in w[i][j] == 0 ? cell(".") : cell(String(format: "%.4f", w[i][j])) }
            lines.append(cell("\(i)") + entries.joined() + (shown < n ? "  …" : ""))
        }
        if shown < n { lines.append(cell("…")) }

        lines.append("")
        let perRound = a.period > 1 ? " per round (product of one period, \(a.period) rounds)" : ""
        func row(_ label: String, _ value: String) -> String {
            label.padding(toLength: 38, withPad: " ", startingAt: 0) + value
        }
        func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }
        lines.append(row("slem |λ₂|", String(format: "%.6f", a.slem) + perRound))
        lines.append(row("‖W − J‖₂ (J = 11ᵀ/n)", String(format: "%.6f", a.spectralNorm) + perRound))
        lines.append(row("row stochastic", yesNo(a.rowStochastic)))
        lines.append(row("column stochastic", yesNo(a.columnStochastic)))
        lines.append(row("symmetric", yesNo(a.symmetric)))
        let rounds: String
        switch a.roundsTo1e6 {
        case _ where n == 1:
            rounds = "0 (a single peer holds the average)"
        case nil:
            rounds = "never (|λ₂| = 1: the graph is disconnected or periodic)"
        case let r? where a.exact && n > 1:
            rounds = a.period > 1 ? "\(r) (the product of \(a.period) rounds is J: exact average after one period)"
                                  : "\(r) (W = J: exact average in one round)"
        case let r?:
            rounds = a.rateRounds.map { "\(r) (ln 1e-6 / ln |λ₂| = \(String(format: "%.2f", $0)))" } ?? "\(r)"
        }
        lines.append(row("predicted rounds to 1e-6", rounds))
        if mode == .plain && a.rowStochastic && !a.columnStochastic {
            lines.append("note: plain mixing with W not column stochastic: peers agree on a weighted mean, not the average")
        }
        return lines.joined(separator: "\n")
    }

    func json(topology: Topology, rule: WeightRule, mode: MixingMode, matrix w: [[Double]], analysis a: MixingAnalysis) -> String {
        let object: [String: Any] = [
            "kind": topology.description,
            "peers": w.count,
            "weights": rule.rawValue,
            "mixing": mode.rawValue,
            "period": a.period,
            "matrix": w,
            "slem": a.slem,
            "spectralNorm": a.spectralNorm,
            "roundsTo1e-6": a.roundsTo1e6.map { $0 as Any } ?? NSNull(),
            "rowStochastic": a.rowStochastic,
            "columnStochastic": a.columnStochastic,
            "symmetric": a.symmetric,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
