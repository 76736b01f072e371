import CHalfKernels
import CVectorMath
import Foundation

/// Where `linear` runs Storyloom's own products (`linear_products.h`) instead of OpenBLAS, and their drivers.
///
/// The AVX2 gemv takes a decoded token's single row (`gemvPays`), where OpenBLAS's sgemv falls short of the memory
/// bandwidth. The AVX2 products take a prompt's prefill (`transposedProductPays`' 2–128 rows from 1,024 inputs, and
/// 64–128 rows from 768), the shapes where OpenBLAS spends its time packing a weight it reads once. The AVX-512
/// blocked product takes the rest, and the prefill from 24 rows, where the CPU has AVX-512F and OpenBLAS runs AVX2
/// kernels (figures in the header and at `gemmRows`).
enum LinearProducts {
    /// Whether they run here: the CPU has AVX2 and FMA, and `STORYLOOM_LINEAR_PRODUCTS=openblas` (to compare) is unset.
    static let enabled = storyloom_linear_products_available() != 0
        && ProcessInfo.processInfo.environment["STORYLOOM_LINEAR_PRODUCTS"] != "openblas"

    /// Weight floats per tile (1 MB): a tile is read from memory by the first 16-row panel and from cache by the
    /// others; a half-precision tile is widened into a scratch of this size per worker.
    static let tileFloats = 1 << 18

    /// 768-input products (OPT-125m's width) from 64 rows, below `transposedProductPays`' 1,024 inputs. On an
    /// AVX2-only AMD EPYC (Zen kernels), one core, C harness alternating, best of 15, two runs, 64 rows: 768 → 768
    /// 1.14–1.16×, 768 → 3,072 1.15–1.19× the better of OpenBLAS's two orientations; `bench llm --quick`, builds
    /// alternating, two pairs of runs: OPT-125m prefill 0.162 / 0.175 → 0.122 / 0.121 s and 0.124 / 0.104 → 0.088 /
    /// 0.090 s. Not for 50 rows (a ViT-B/32 image: four panels
    /// with 14 rows of padding): 0.99–1.01× in the harness, and `bench clip --quick` B/32 batch 1 went 86–92 →
    /// 149–214 ms at two threads.
    static let narrowInputs = 768, narrowRows = 64

    /// Whether `linear` of `rows` rows over `inFeatures` inputs takes this path. Where the AVX-512 blocked product
    /// runs (`gemmEnabled`) it takes their shapes from `gemmRows` rows.
    static func pays(rows: Int, inFeatures: Int) -> Bool {
        enabled && path != .openBLAS && !(gemmRuns && rows >= gemmRows)
            && (transposedProductPays(rows: rows, inFeatures: inFeatures)
                || (rows >= narrowRows && rows <= 128 && inFeatures >= narrowInputs))
    }

    /// Whether `linear` of `rows` rows takes the AVX-512 blocked product (`storyloom_linear_gemm`) instead of OpenBLAS
    /// or the AVX2 products: every product of 2 rows or more that `pays` does not take, on a CPU with AVX-512F where
    /// OpenBLAS runs kernels without it (`gemmEnabled`).
    static func gemmPays(rows: Int, inFeatures: Int) -> Bool {
        gemmRuns && rows >= 2 && inFeatures >= 1 && !pays(rows: rows, inFeatures: inFeatures)
    }

    /// From this many rows the blocked product takes the AVX2 products' shapes too. C harness, one core of an AMD
    /// EPYC (Zen 5), AVX-512 blocked product against the AVX2 products with their write-back: 16 rows 0.71–0.80×
    /// (2,048 → 2,048), 24 rows 1.32×, 32 rows 1.24–1.66×, 64 rows 1.33–2.07× (768 → 3,072, 2,048 → 8,192, 8,192 →
    /// 2,048), 128 rows 2.1× (1,024 → 4,096).
    static let gemmRows = 24

    private static var gemmRuns: Bool { gemmEnabled && path == .default }

    /// The CPU has AVX-512F and OpenBLAS's chosen kernels are AVX2 or older (Haswell, Zen, …: OpenBLAS 0.3.21 does
    /// not know Zen 5, and some machines set `OPENBLAS_CORETYPE=Haswell`), so half of each vector unit sits idle in
    /// its sgemm. Where OpenBLAS runs its own AVX-512 kernels (SkylakeX, Cooper Lake, Sapphire Rapids) it keeps these
    /// products: ours were not measured beside those. `bench clip` (Zen 5, 2 threads, `OPENBLAS_CORETYPE=Haswell`):
    /// see the README's Speed section.
    static let gemmEnabled = enabled && storyloom_linear_gemm_available() != 0
        && !openBLASAVX512Cores.contains(BLASKernels.coreName.lowercased())
    static let openBLASAVX512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// `out[rows, O] = x[rows, K] · weightᵀ + bias` through `storyloom_linear_gemm`: the workers split the weight's
    /// rows in multiples of its 32-feature panels (x's rows where there are too few features to go round); a
    /// half-precision weight is widened a tile at a time into each worker's scratch. Every element of `out` is written,
    /// and the result does not depend on the thread count.
    static func runGEMM(_ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int, weight: Rows, outFeatures o: Int,
                        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let panels = (o + 31) / 32
        let byFeatures = panels >= Threads.count
        let workers = max(1, min(Threads.count, byFeatures ? panels : rows))
        let tileRows = max(32, tileFloats / max(k, 1) / 32 * 32)
        Threads.parallelFor(workers) { worker in
            let (f0, f1) = byFeatures ? (min(o, panels * worker / workers * 32), min(o, panels * (worker + 1) / workers * 32)) : (0, o)
            let (r0, r1) = byFeatures ? (0, rows) : (rows * worker / workers, rows * (worker + 1) / workers)
            guard f1 > f0, r1 > r0 else { return }
            for r in r0..<r1 {
                if let bias { (out + r * o + f0).update(from: bias + f0, count: f1 - f0) }
                else { (out + r * o + f0).update(repeating: 0, count: f1 - f0) }
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_linear_gemm_scratch_size())
            defer { scratch.deallocate() }
            switch weight {
            case let .float32(w):
                storyloom_linear_gemm(r1 - r0, k, x + r0 * k, f1 - f0, w + f0 * k, out + r0 * o + f0, o, scratch)
            case let .half(w, format):
                let wide = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * k)
                defer { wide.deallocate() }
                var t = f0
                while t < f1 {
                    let n = min(tileRows, f1 - t)
                    storyloom_half_to_float(w + t * k, wide, n * k, format)
                    storyloom_linear_gemm(r1 - r0, k, x + r0 * k, n, wide, out + r0 * o + t, o, scratch)
                    t += n
                }
            }
        }
    }

    /// One operand of `accumulate`: element (i, k), i a row of x or a feature of w and k the depth, at
    /// `base[i * stride + k]`, or at `base[k * stride + i]` when `depthMajor` (a `[K, N]` matrix such as a
    /// convolution's patches, or an NCHW image's `[C, H·W]` block read as token rows).
    struct Operand {
        let base: UnsafePointer<Float>
        let stride: Int
        let depthMajor: Bool

        init(_ base: UnsafePointer<Float>, stride: Int, depthMajor: Bool = false) {
            self.base = base; self.stride = stride; self.depthMajor = depthMajor
        }

        /// The operand from its `i`-th row (or feature) on.
        func from(_ i: Int) -> UnsafePointer<Float> { depthMajor ? base + i : base + i * stride }
    }

    /// Whether a product outside `linear` — a convolution's `weight · patches`, an image transformer's projections
    /// from and to channels, a residual branch's `addLinear` — takes the blocked product (`accumulate`) instead of
    /// OpenBLAS: where `linear`'s products of 2 rows or more do (`gemmEnabled`). C harness, one core of an AMD EPYC
    /// (Zen 5), beside OpenBLAS's Haswell kernels, best of 5 to 9: from channels (x depth-major) 4,096 × 320 → 320
    /// 1.35–1.44×, 1,024 × 640 → 640 1.52–1.56×, 256 × 1,280 → 1,280 1.54–1.65×; to channels 320 × 320 → 4,096 1.17×,
    /// 1,280 × 1,280 → 256 1.76× (that run beside a build).
    static func blockedPays(rows: Int, features: Int) -> Bool {
        gemmRuns && convProductsEnabled && rows >= 2 && features >= 1
    }

    /// Whether the products around convolutions (`blockedPays`, `weightProductPays`) may leave OpenBLAS:
    /// `STORYLOOM_CONV_PRODUCTS=openblas` keeps it there, to compare.
    static let convProductsEnabled = ProcessInfo.processInfo.environment["STORYLOOM_CONV_PRODUCTS"] != "openblas"

    /// `out[rows, features] += x · wᵀ` (out's rows `ldo` apart; the caller seeds them with the bias, a residual or
    /// zeros) through `storyloom_gemm_strided`, x and w in either layout (`Operand`). The workers split the features
    /// in multiples of the kernel's 32-feature panels, or x's rows where there are too few features to go round; each
    /// output is one FMA chain over the depth, so the result does not depend on the thread count.
    static func accumulate(rows: Int, depth k: Int, x: Operand, features o: Int, w: Operand,
                           out: UnsafeMutablePointer<Float>, ldo: Int) {
        guard rows > 0, o > 0, k > 0 else { return }
        let panels = (o + 31) / 32
        let byFeatures = panels >= Threads.count
        let workers = max(1, min(Threads.count, byFeatures ? panels : rows))
        Threads.parallelFor(workers) { worker in
            let (f0, f1) = byFeatures ? (min(o, panels * worker / workers * 32), min(o, panels * (worker + 1) / workers * 32)) : (0, o)
            let (r0, r1) = byFeatures ? (0, rows) : (rows * worker / workers, rows * (worker + 1) / workers)
            guard f1 > f0, r1 > r0 else { return }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_linear_gemm_scratch_size())
            defer { scratch.deallocate() }
            storyloom_gemm_strided(r1 - r0, k, x.from(r0), x.stride, x.depthMajor ? 1 : 0, f1 - f0, w.from(f0), w.stride,
                                   w.depthMajor ? 1 : 0, out + r0 * ldo + f0, ldo, scratch)
        }
    }

    /// Whether a convolution's `weight · patches` with `rows` output channels takes `storyloom_weight_product` (the
    /// AVX-512 kernel of the Winograd products) instead of OpenBLAS: where the blocked product runs (`gemmEnabled`),
    /// from 32 output channels. C harness, one core of an AMD EPYC (Zen 5), beside OpenBLAS's Haswell kernels with the
    /// bias seeded, best of 5 (rows × depth × columns): SD's 1×1 shortcuts 640 × 320 × 4,096 1.38×, 1,280 × 640 ×
    /// 1,024 1.62×, 1,280 × 2,560 × 256 1.99×; its stride-2 and `conv_in` im2col 320 × 2,880 × 1,024 1.65×, 320 × 36 ×
    /// 4,096 1.34×; StoryWorld's 128 × 128 × 512 1.98×, 64 × 576 × 256 1.92×. Not for fewer rows (a `conv_out`'s 3 or 4
    /// channels: 4 × 2,880 × 4,096 0.47×, 12 × 2,880 × 1,024 0.23×), where an 8-row block over the whole depth is
    /// starved. The kernel's blocks of 8 rows over the whole depth beat the blocked product's packing of the weight
    /// here (640 × 1,920 × 1,024 187 against 175 GFLOP/s, 1,280 × 11,520 × 64 77 against 50).
    static func weightProductPays(rows: Int) -> Bool {
        gemmRuns && convProductsEnabled && storyloom_weight_product_available() != 0 && rows >= 32
    }

    /// `c[rows, n] (+)= w[rows, depth] · b[depth, n]` through `storyloom_weight_product` (`accumulate`: over the bias
    /// seeded in `c`). The workers take bands of whole 32-column panels, or of 8-row blocks where there are too few
    /// panels to go round; each output is its own FMA chain, so the split does not change a bit.
    static func runWeightProduct(_ w: UnsafePointer<Float>, rows: Int, depth: Int, b: UnsafePointer<Float>, n: Int,
                                 ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let panels = (n + 31) / 32, blocks = (rows + 7) / 8
        let byColumns = panels >= Threads.count
        let workers = max(1, min(Threads.count, byColumns ? panels : blocks))
        Threads.parallelFor(workers) { i in
            if byColumns {
                let j0 = min(n, panels * i / workers * 32), j1 = min(n, panels * (i + 1) / workers * 32)
                guard j1 > j0 else { return }
                storyloom_weight_product(rows, j1 - j0, depth, w, b + j0, ldb, c + j0, ldc, accumulate ? 1 : 0)
            } else {
                let r0 = min(rows, blocks * i / workers * 8), r1 = min(rows, blocks * (i + 1) / workers * 8)
                guard r1 > r0 else { return }
                storyloom_weight_product(r1 - r0, n, depth, w + r0 * depth, b, ldb, c + r0 * ldc, ldc, accumulate ? 1 : 0)
            }
        }
    }

    /// Whether `linear` of one row (a decoded token) takes `storyloom_linear_gemv` instead of OpenBLAS's sgemv: wherever
    /// the AVX2 products run (figures in the header).
    static var gemvPays: Bool { enabled && path != .openBLAS }

    /// `out[O] = weight · x + bias` through `storyloom_linear_gemv`: the workers take bands of whole 4-row groups
    /// (at least 64 rows each, as the half-precision decode does), each writing its own outputs.
    static func runGEMV(_ x: UnsafePointer<Float>, inFeatures k: Int, weight: UnsafePointer<Float>, outFeatures o: Int,
                        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let groups = (o + 3) / 4
        let workers = min(Threads.count, max(1, o / 64))
        Threads.parallelFor(workers) { worker in
            let lo = min(o, groups * worker / workers * 4), hi = min(o, groups * (worker + 1) / workers * 4)
            guard hi > lo else { return }
            storyloom_linear_gemv(weight + lo * k, hi - lo, k, x, bias.map { $0 + lo }, out + lo)
        }
    }

    /// Runs `body` with every `linear` called on this thread going to OpenBLAS: how tests check, on a CPU with
    /// AVX2 and FMA, the path a CPU without them takes.
    static func withOpenBLAS<T>(_ body: () throws -> T) rethrows -> T { try with(.openBLAS, body) }

    /// Runs `body` with the AVX-512 blocked product off on this thread: how tests check, on a CPU with AVX-512F, the
    /// path an AVX2-only CPU takes.
    static func withoutBlockedProduct<T>(_ body: () throws -> T) rethrows -> T { try with(.avx2Only, body) }

    private enum Path: Int { case `default` = 0, openBLAS = 1, avx2Only = 2 }

    private static var path: Path { Path(rawValue: Int(bitPattern: pthread_getspecific(pathKey))) ?? .default }

    private static func with<T>(_ path: Path, _ body: () throws -> T) rethrows -> T {
        let before = pthread_getspecific(pathKey)
        pthread_setspecific(pathKey, UnsafeRawPointer(bitPattern: path.rawValue))
        defer { pthread_setspecific(pathKey, before) }
        return try body()
    }

    /// A weight as the products read it: float32 as stored, or 16-bit widened a tile at a time.
    enum Rows {
        case float32(UnsafePointer<Float>)
        case half(UnsafePointer<UInt16>, storyloom_half_format)
    }

    /// `out[rows, O] = x[rows, K] · weightᵀ + bias`; every element of `out` is written. Each worker takes a band of
    /// weight rows (a multiple of the kernel's 6) and writes its features' columns of `out`; the result does not
    /// depend on the thread count (each output is one FMA chain over K).
    static func run(_ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int, weight: Rows, outFeatures o: Int,
                    bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: storyloom_linear_panels_size(rows, k))
        defer { panels.deallocate() }
        storyloom_linear_pack(rows, k, x, panels)
        // Tiles and bands in whole 6-row blocks, so only a band's last block is partial (a harness that cut tiles in
        // multiples of 8, with single-row remainders, ran at 50–85 GFLOP/s against about 200).
        let blocks = (o + 5) / 6
        let tileRows = max(6, tileFloats / max(k, 1) / 6 * 6)
        let stride = storyloom_linear_product_stride(rows)
        let workers = min(Threads.count, blocks)
        Threads.parallelFor(workers) { worker in
            let lo = min(o, blocks * worker / workers * 6), hi = min(o, blocks * (worker + 1) / workers * 6)
            let product = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * stride)
            var scratch: UnsafeMutablePointer<Float>?
            if case .half = weight { scratch = .allocate(capacity: tileRows * k) }
            defer { product.deallocate(); scratch?.deallocate() }
            var r0 = lo
            while r0 < hi {
                let n = min(tileRows, hi - r0)
                let tile: UnsafePointer<Float>
                switch weight {
                case let .float32(w):
                    tile = w + r0 * k
                case let .half(w, format):
                    storyloom_half_to_float(w + r0 * k, scratch!, n * k, format)
                    tile = UnsafePointer(scratch!)
                }
                storyloom_linear_product(n, rows, k, tile, panels, product)
                writeTransposed(product, features: n, rows: rows, productStride: stride, bias: bias.map { $0 + r0 },
                                into: out + r0, stride: o)
                r0 += n
            }
        }
    }
}

private let pathKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()

/// What runs `linear`'s prefill-shaped products here, for `doctor` and the benchmarks' notes.
public var linearProductsDescription: String {
    if storyloom_linear_products_available() == 0 { return "linear products: OpenBLAS (no AVX2 + FMA on this CPU)" }
    return LinearProducts.enabled
        ? "linear products: Storyloom's AVX2 kernels for one row (decode), 2–128 rows from 1,024 inputs and \(LinearProducts.narrowRows)–128 rows from \(LinearProducts.narrowInputs), "
            + (LinearProducts.gemmEnabled ? "its AVX-512 blocked product from \(LinearProducts.gemmRows) rows and for the other products of 2 rows or more (OpenBLAS runs \(BLASKernels.coreName) kernels)" : "OpenBLAS otherwise")
        : "linear products: OpenBLAS (STORYLOOM_LINEAR_PRODUCTS=openblas)"
}

/// What runs the products around convolutions here (a convolution's `weight · patches`, an image transformer's
/// projections from and to channels, `addLinear`), for `doctor` and the benchmarks' notes.
public var convProductsDescription: String {
    if !LinearProducts.gemmEnabled {
        return "convolution products: OpenBLAS (" + (storyloom_linear_gemm_available() == 0 ? "no AVX-512F on this CPU)"
            : LinearProducts.enabled ? "OpenBLAS runs its own AVX-512 kernels)" : "STORYLOOM_LINEAR_PRODUCTS=openblas)")
    }
    return LinearProducts.convProductsEnabled
        ? "convolution products: Storyloom's AVX-512 kernels (weight · patches from 32 output channels, the blocked product for the projections from and to channels)"
        : "convolution products: OpenBLAS (STORYLOOM_CONV_PRODUCTS=openblas)"
}
