// swift-tools-version: 6.1
import PackageDescription

/// Modules by concept; dependencies point one way (see docs/architecture.md):
/// CSodium ← ChorusCrypto ← ChorusWire ← ChorusMembership ─┬─ ChorusCore ─┬─ ChorusPeer (UDP shell) ─ ChorusExperiment ─┬─ chorus
/// ChorusLearning, ChorusAveraging ────────────────────────┘              └─ ChorusSimulation (virtual) ─────────────────┘
/// ChorusRuns (schedules in; series, events and summary out; who holds which data shard) is
/// shared by the simulator, the local networks of real processes and real experiments. CPrefetch
/// (a C inline prefetch hint) serves the simulator alone.
let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already in the graph through SwiftNIO; named for HeapModule (the simulator's event queue
        // and the membership dissemination order).
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "ChorusCrypto", dependencies: ["CSodium"]),
        .target(name: "ChorusWire", dependencies: ["ChorusCrypto", .product(name: "HashTreeCollections", package: "swift-collections")]),
        .target(
            name: "ChorusLearning",
            exclude: ["Resources/ATTRIBUTION.md"],
            resources: [.copy("Resources/digits.csv")]
        ),
        // Cross-module optimisation: its generic averager is specialised for the peer id in ChorusCore
        // (the simulator's hot path) instead of running through generic metadata and witness tables.
        .target(name: "ChorusAveraging", swiftSettings: [.unsafeFlags(["-cross-module-optimization"])]),
        .target(
            name: "ChorusMembership",
            dependencies: [
                "ChorusCrypto", "ChorusWire",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "HashTreeCollections", package: "swift-collections"),
            ]
        ),
        .target(
            name: "ChorusCore",
            dependencies: ["ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusAveraging", "ChorusMembership"]
        ),
        .target(name: "CPrefetch"),
        .target(name: "ChorusRuns", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        .target(
            name: "ChorusSimulation",
            dependencies: [
                "ChorusRuns", "ChorusCore", "ChorusMembership", "ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusAveraging", "CPrefetch",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "ChorusPeer",
            dependencies: [
                "ChorusRuns", "ChorusCore", "ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusAveraging", "ChorusMembership",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ChorusExperiment",
            dependencies: ["ChorusRuns", "ChorusPeer", "ChorusCrypto", "ChorusLearning", "ChorusAveraging"]
        ),
        .executableTarget(
            name: "chorus",
            dependencies: [
                "ChorusRuns", "ChorusExperiment", "ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusAveraging", "ChorusPeer", "ChorusMembership", "ChorusSimulation", "ChorusCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChorusCryptoTests", dependencies: ["ChorusCrypto"]),
        .testTarget(name: "ChorusWireTests", dependencies: ["ChorusWire", "ChorusCrypto"]),
        .testTarget(name: "ChorusLearningTests", dependencies: ["ChorusLearning"]),
        .testTarget(name: "ChorusAveragingTests", dependencies: ["ChorusAveraging"]),
        .testTarget(name: "ChorusMembershipTests", dependencies: ["ChorusMembership", "ChorusSimulation", "ChorusCrypto", "ChorusLearning"]),
        .testTarget(
            name: "ChorusPeerTests",
            dependencies: [
                "ChorusPeer", "ChorusAveraging", "ChorusCore", "ChorusCrypto", "ChorusWire", "ChorusMembership", "ChorusLearning",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // In-process tests of PeerNode: an EmbeddedEventLoop's virtual clock, captured logs.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChorusCoreTests", dependencies: ["ChorusCore", "ChorusAveraging", "ChorusCrypto", "ChorusLearning", "ChorusMembership", "ChorusWire"]),
        .testTarget(
            name: "ChorusSimulationTests",
            dependencies: ["ChorusSimulation", "ChorusRuns", "ChorusCore", "ChorusAveraging", "ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusMembership"]
        ),
        .testTarget(
            name: "ChorusExperimentTests",
            dependencies: ["ChorusExperiment", "ChorusRuns", "ChorusPeer"]
        ),
        // Every input a libFuzzer target (Fuzz/, scripts/fuzz.sh) found, kept as a test.
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["ChorusRuns", "ChorusPeer", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (docs/security.md, "Fuzzing with libFuzzer"): declared only when CHORUS_FUZZ is
// set, which scripts/fuzz.sh does for its own build path, built with `swiftc -sanitize=fuzzer,address`.
// A plain `swift build` or `swift test` never sees them: libFuzzer supplies `main`, so they link
// only with the fuzzer runtime.
if Context.environment["CHORUS_FUZZ"] != nil {
    let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
        ("datagram", ["ChorusWire", "ChorusCrypto"]),
        ("reassembler", ["ChorusWire", "ChorusCrypto"]),
        ("membership", ["ChorusMembership", "ChorusWire", "ChorusCrypto"]),
        ("parameters", ["ChorusCore", "ChorusAveraging"]),
        ("config", ["ChorusPeer"]),
        ("schedule", ["ChorusRuns"]),
        ("checkpoint", ["ChorusPeer", "ChorusCrypto"]),
        ("peer", ["ChorusCore", "ChorusCrypto", "ChorusWire", "ChorusLearning", "ChorusMembership", "ChorusAveraging"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["ChorusWire", "ChorusCrypto"], path: "Fuzz/Support"))
    for fuzzer in fuzzers {
        let name = "fuzz-" + fuzzer.name
        package.targets.append(.executableTarget(
            name: name, dependencies: ["FuzzSupport"] + fuzzer.dependencies, path: "Fuzz/Targets/\(fuzzer.name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
