// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "milestones",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "milestones", targets: ["milestones"]),
        .library(name: "MilestoneLedger", targets: ["MilestoneLedger"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // CSV input (record --file events.csv): a spreadsheet's export, parsed by a maintained package.
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        // PostgreSQL read models (--db postgresql://…): the driver only, no ORM.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // Headers and inline shims for the system OpenSSL (libssl-dev).
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // One SQLite setting that only C can make (sqlite3_config takes variable arguments).
        .target(name: "CSQLiteTuning", linkerSettings: [.linkedLibrary("sqlite3")]),
        // Domain-free machinery (package access): memory that grows in place, the fingerprint
        // table, SipHash, the pipeline and thread helpers. It knows no event, record or ledger.
        .target(name: "MilestoneSupport"),
        // SHA-256, Ed25519 and base64 through the system OpenSSL: the one target that imports it,
        // and checks every return code.
        .target(name: "MilestoneCrypto", dependencies: ["COpenSSL"]),
        // RFC 8785 canonical JSON, restricted as docs/ledger-format.md says: value, reader, writer.
        .target(name: "CanonicalJSON"),
        // Event types, validation and the domain rules (phase, target state) as pure functions.
        .target(name: "MilestoneModel", dependencies: ["CanonicalJSON", "MilestoneSupport"]),
        // Records, hash chain, the log file, verify, Merkle proofs, checkpoints, keys.
        .target(name: "MilestoneLedger", dependencies: ["CanonicalJSON", "MilestoneModel", "MilestoneSupport", "MilestoneCrypto"]),
        // Read models in SQLite (GRDB) or PostgreSQL (PostgresNIO), catch-up, time-travel queries.
        .target(
            name: "MilestoneProjections",
            dependencies: [
                "CanonicalJSON", "MilestoneModel", "MilestoneLedger", "MilestoneSupport", "CSQLiteTuning",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The system SQLite's C API, which GRDB wraps: for binding catch-up rows directly.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // The command tree, output formats, exit codes.
        .target(
            name: "MilestonesCLI",
            dependencies: [
                "CanonicalJSON", "MilestoneModel", "MilestoneLedger", "MilestoneProjections",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "SwiftCSV", package: "SwiftCSV"),
            ]
        ),
        .executableTarget(name: "milestones", dependencies: ["MilestonesCLI"]),
        // Tests: one target per module, and one over the built binary as a user runs it.
        // TestSupport: the package root, fixtures, the binary, throwaway folders, `cli([...])`.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "MilestoneSupportTests", dependencies: ["MilestoneSupport", "TestSupport"]),
        .testTarget(name: "MilestoneCryptoTests", dependencies: ["MilestoneCrypto", "TestSupport"]),
        .testTarget(name: "CanonicalJSONTests", dependencies: ["CanonicalJSON", "TestSupport"]),
        .testTarget(name: "MilestoneModelTests", dependencies: ["CanonicalJSON", "MilestoneSupport", "MilestoneModel", "TestSupport"]),
        .testTarget(
            name: "MilestoneLedgerTests",
            dependencies: ["CanonicalJSON", "MilestoneModel", "MilestoneLedger", "TestSupport", "milestones"]
        ),
        .testTarget(
            name: "MilestoneProjectionsTests",
            dependencies: [
                "CanonicalJSON", "MilestoneModel", "MilestoneLedger", "MilestoneProjections", "TestSupport", "milestones",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "MilestonesCLITests", dependencies: ["CanonicalJSON", "MilestoneModel", "MilestonesCLI", "TestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["CanonicalJSON", "MilestoneModel", "MilestoneLedger", "MilestoneProjections", "TestSupport", "milestones",
                           .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// `make fuzz` builds the libFuzzer entry points (only then: libFuzzer supplies main).
if Context.environment["MILESTONES_FUZZ"] == "1" {
    package.targets.append(.executableTarget(
        name: "milestones-fuzz",
        dependencies: ["CanonicalJSON", "MilestoneModel", "MilestoneLedger"],
        path: "Fuzz/milestones-fuzz",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    ))
    package.products.append(.executable(name: "milestones-fuzz", targets: ["milestones-fuzz"]))
}
