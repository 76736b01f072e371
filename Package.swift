// swift-tools-version: 6.0
import PackageDescription

/// Storyloom: GILL-style multimodal story workflows, native Swift inference over OpenBLAS.
/// Targets are layered; data flows from the C shims and leaf libraries up to the thin executable.
let package = Package(
    name: "Storyloom",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "storyloom", targets: ["storyloom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/JohnSundell/Plot", from: "0.14.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
    ],
    targets: [
        // C libraries, each through a C-prefixed system library target with its apt provider.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        // setjmp/longjmp error handling for libpng and libjpeg lives in C, where it is legal.
        .target(name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"]),
        // cpuid/XGETBV through the compiler's builtins: which OpenBLAS kernels this CPU can run.
        .target(name: "CCPUFeatures"),
        .target(name: "CHeap"),
        // statfs's filesystem type (<sys/vfs.h> is not in Swift's Glibc module): a SQLite store is refused on NFS.
        .target(name: "CFilesystem"),

        .target(name: "Imaging", dependencies: ["CImageCodecs"]),
        // f16/bf16 weight kernels (widening, batch-1 products) with a run-time AVX2/F16C path.
        .target(name: "CHalfKernels"),
        // exp/erf activations, softmax, GEGLU, fused attention and the Winograd transforms with a run-time AVX2/FMA
        // path, and the Winograd products with an AVX-512 one (Swift targets baseline x86-64).
        // Optimised in debug builds too: its kernels run 50–100× slower at -O0, and the tests run them.
        .target(name: "CVectorMath", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CCPUFeatures", "CHeap", "CHalfKernels", "CVectorMath"]),
        .target(name: "Stories", dependencies: [
            "Imaging",
            .product(name: "SwiftCSV", package: "SwiftCSV"),
        ]),
        .target(name: "StoryWorld", dependencies: ["Stories", "Imaging"]),
        .target(name: "Store", dependencies: [
            "CFilesystem",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        .target(name: "Models", dependencies: ["Tensor", "Imaging", "Store"]),
        .target(name: "Workflow", dependencies: [
            "Store", "Stories", "StoryWorld", "Gallery",
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "Gallery", dependencies: [
            "Store",
            .product(name: "Plot", package: "Plot"),
        ]),
        .target(name: "Steps", dependencies: ["Workflow", "Models", "Tensor", "Imaging", "Stories", "Store", "StoryWorld"]),
        .target(name: "Bench", dependencies: ["Workflow", "Steps", "StoryWorld", "Tensor", "Models"]),
        .executableTarget(name: "storyloom", dependencies: [
            "Workflow", "Steps", "Models", "StoryWorld", "Stories", "Store", "Gallery", "Bench", "Tensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CVectorMath"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensor", "Imaging", .product(name: "Crypto", package: "swift-crypto")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "StoriesTests", dependencies: ["Stories"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StoryWorldTests", dependencies: ["StoryWorld", "Stories", "Imaging"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "StoreTestSupport"]),
        .testTarget(name: "WorkflowTests", dependencies: ["Workflow", "Steps", "Stories", "Store", "StoreTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StepsTests", dependencies: ["Steps", "Workflow", "Imaging", "StoryWorld", "Stories"]),
        // Test support: libxml2's HTML parser with XPath, for asserting on the DOM a browser would build.
        .target(name: "HTMLInspection", dependencies: ["CLibXML2"]),
        // Test support: a fresh database per test on the server STORYLOOM_TEST_POSTGRES names.
        .target(name: "StoreTestSupport", dependencies: ["Store"]),
        .testTarget(name: "GalleryTests", dependencies: ["Gallery", "Store", "HTMLInspection"]),
        .testTarget(name: "CLITests", dependencies: ["storyloom", "Store", "StoreTestSupport", "Imaging", "HTMLInspection", "Gallery", .product(name: "GRDB", package: "GRDB.swift")]),
    ],
    swiftLanguageModes: [.v6]
)
