// swift-tools-version: 6.1
import PackageDescription

/// Modules by concept; dependencies point one way (see docs/architecture.md):
/// CSodium ← ChorusCrypto ← ChorusWire ← ChorusPeer ← chorus
/// ChorusLearning and ChorusAveraging are pure and import nothing of ours.
let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "ChorusCrypto", dependencies: ["CSodium"]),
        .target(name: "ChorusWire", dependencies: ["ChorusCrypto"]),
        .target(
            name: "ChorusLearning",
            exclude: ["Resources/ATTRIBUTION.md"],
            resources: [.copy("Resources/digits.csv")]
        ),
        .target(name: "ChorusAveraging"),
        .executableTarget(
            name: "chorus",
            dependencies: [
                "ChorusCrypto", "ChorusWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ChorusCryptoTests", dependencies: ["ChorusCrypto"]),
        .testTarget(name: "ChorusWireTests", dependencies: ["ChorusWire", "ChorusCrypto"]),
        .testTarget(name: "ChorusLearningTests", dependencies: ["ChorusLearning"]),
    ],
    swiftLanguageModes: [.v6]
)
