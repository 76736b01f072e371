import CVectorMath

/// Element-wise and row-wise ops: activations, residual adds, layer norm, softmax.
///
/// The loops run over unsafe buffer pointers with no bounds checks or branches in the body. Anything
/// with exp or erf in it (GELU, SiLU, softmax, GEGLU) runs in CVectorMath's kernels: polynomial exp/erf,
/// eight lanes with AVX2 + FMA when the CPU has them.

/// The activation functions transformers configs name in `hidden_act`.
public enum Activation: String, Sendable, Codable, CaseIterable {
    /// Exact GELU, `x · Φ(x)` with erf (HF `gelu`).
    case gelu
    /// CLIP's `x · sigmoid(1.702 x)` (HF `quick_gelu`).
    case quickGELU = "quick_gelu"
    /// `x · sigmoid(x)` (HF `silu` / `swish`).
    case silu
    /// `max(x, 0)`.
    case relu
}

/// Applies `activation` to every element, in place.
public func applyActivation(_ activation: Activation, to x: inout Tensor) {
    x.data.withUnsafeMutableBufferPointer { p in applyActivation(activation, p) }
}

/// Returns `activation` applied to every element.
public func activated(_ x: Tensor, _ activation: Activation) -> Tensor {
    var y = x
    applyActivation(activation, to: &y)
    return y
}

/// Pointer form of `applyActivation`; large buffers are split over `Threads.count` threads.
public func applyActivation(_ activation: Activation, _ p: UnsafeMutableBufferPointer<Float>) {
    let n = p.count
    guard n > 0, let b = p.baseAddress else { return }
    // Below ~64K elements the thread hand-off costs more than it saves.
    let chunks = n >= 65_536 ? Threads.count : 1
    let base = SendablePointer(b)
    Threads.parallelFor(chunks) { c in
        let lo = n * c / chunks, hi = n * (c + 1) / chunks
        activationKernel(activation, base.value + lo, hi - lo)
    }
}

@inline(__always)
func activationKernel(_ activation: Activation, _ b: UnsafeMutablePointer<Float>, _ n: Int) {
    switch activation {
    case .gelu:
        storyloom_gelu(b, n)
    case .quickGELU:
        storyloom_quick_gelu(b, n)
    case .silu:
        storyloom_affine_silu(b, n, 1, 0)
    case .relu:
        for i in 0..<n { b[i] = max(b[i], 0) }
    }
}

/// GEGLU over the last dimension (`[..., 2d]` → `[..., d]`): the first half times the exact GELU of
/// the second half, as diffusers' `GEGLU`. Rows are split over `Threads.count` threads when there are many.
public func geglu(_ x: Tensor) throws -> Tensor {
    let d2 = x.lastDimension, d = d2 / 2, rows = x.rowCount
    guard d2 % 2 == 0 else { throw TensorError("geglu: last dimension \(d2) of \(x.shape) is odd") }
    var out = uninitializedFloats(rows * d)
    x.data.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBufferPointer { op in
            guard rows > 0, d > 0 else { return }
            let p = SharedPointers(src: xp.baseAddress!, dst: op.baseAddress!)
            // Below ~64K outputs the thread hand-off costs more than it saves.
            let chunks = rows * d >= 65_536 ? min(Threads.count, rows) : 1
            Threads.parallelFor(chunks) { c in
                let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
                storyloom_geglu(p.src + lo * d2, p.dst + lo * d, hi - lo, d)
            }
        }
    }
    return Tensor(uncheckedShape: Array(x.shape.dropLast()) + [d], data: out)
}

/// A raw pointer handed to parallel workers that touch disjoint ranges of it.
struct SendablePointer: @unchecked Sendable {
    let value: UnsafeMutablePointer<Float>
    init(_ value: UnsafeMutablePointer<Float>) { self.value = value }
}

/// `a + b` element-wise (shapes must match): the residual connection.
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    var out = a
    try addInPlace(&out, b)
    return out
}

/// `a += b` element-wise (shapes must match).
public func addInPlace(_ a: inout Tensor, _ b: Tensor) throws {
    guard a.shape == b.shape else { throw TensorError("add: shapes differ: \(a.shape) vs \(b.shape)") }
    let n = a.count
    a.data.withUnsafeMutableBufferPointer { ap in
        b.data.withUnsafeBufferPointer { bp in
            guard let x = ap.baseAddress, let y = bp.baseAddress else { return }
            for i in 0..<n { x[i] += y[i] }
        }
    }
}

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) · weight + bias`,
/// with the biased variance, as `torch.nn.LayerNorm`.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) throws -> Tensor {
    let d = x.lastDimension
    guard weight.count == d, bias.count == d else {
        throw TensorError("layerNorm: weight \(weight.shape) / bias \(bias.shape) do not match last dimension \(d) of \(x.shape)")
    }
    var out = x
    out.data.withUnsafeMutableBufferPointer { op in
        weight.data.withUnsafeBufferPointer { wp in
            bias.data.withUnsafeBufferPointer { bp in
                layerNormRows(op, rowLength: d, weight: wp, bias: bp, eps: eps)
            }
        }
    }
    return out
}

/// In-place layer norm of consecutive rows of length `rowLength`.
public func layerNormRows(_ p: UnsafeMutableBufferPointer<Float>, rowLength d: Int,
                          weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, eps: Float) {
    guard d > 0, let base = p.baseAddress, let w = weight.baseAddress, let bb = bias.baseAddress else { return }
    let rows = p.count / d
    for r in 0..<rows {
        let x = base + r * d
        // Two passes (mean, then centred squares) match torch's numerics better than E[x²]-E[x]².
        let mean = sumValues(x, d) / Float(d)
        var i = 0
        var acc = SIMD16<Float>(repeating: 0)
        let meanV = SIMD16<Float>(repeating: mean)
        while i + 16 <= d {
            let c = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - meanV
            acc += c * c
            i += 16
        }
        var sq = acc.sum()
        while i < d { let c = x[i] - mean; sq += c * c; i += 1 }
        let rstd = 1 / (sq / Float(d) + eps).squareRoot()
        for i in 0..<d { x[i] = (x[i] - mean) * rstd * w[i] + bb[i] }
    }
}

/// Softmax over the last dimension, in place, numerically stabilised by the row maximum.
public func softmaxLastDimension(_ x: inout Tensor) {
    let d = x.lastDimension
    x.data.withUnsafeMutableBufferPointer { p in
        guard let base = p.baseAddress, d > 0 else { return }
        for r in 0..<(p.count / d) { softmaxRow(base + r * d, count: d) }
    }
}

/// Softmax of `count` values at `x`, in place. `-infinity` entries (masked) become 0.
@inline(__always)
public func softmaxRow(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    // Reductions run on SIMD16 accumulators: strict IEEE order would keep a scalar loop serial.
    let m = maxValue(x, n)
    if m == -Float.infinity {
        // A fully masked row: torch yields NaN; a zero row is the useful answer here.
        x.update(repeating: 0, count: n)
        return
    }
    let inv = 1 / storyloom_exp_shifted_sum(x, n, m)
    for i in 0..<n { x[i] *= inv }
}

/// Maximum of `n` floats (NaN-free input assumed), SIMD8-wide.
///
/// Written as compare-and-replace: the standard library's `pointwiseMax` is lowered lane by
/// lane and measured 40× slower here.
@inline(__always)
func maxValue(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var acc = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        acc.replace(with: v, where: v .> acc)
        i += 8
    }
    var m = -Float.infinity
    for k in 0..<8 where acc[k] > m { m = acc[k] }
    while i < n { if x[i] > m { m = x[i] }; i += 1 }
    return m
}

/// Sum of `n` floats, SIMD16-wide.
@inline(__always)
func sumValues(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var acc = SIMD16<Float>(repeating: 0)
    while i + 16 <= n {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        i += 16
    }
    var s = acc.sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

