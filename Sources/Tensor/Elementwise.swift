/// Element-wise and row-wise ops: activations, residual adds, layer norm, softmax.
///
/// The loops run over unsafe buffer pointers with no bounds checks or branches in the body,
/// and `exp`/`erf` use the polynomial forms below instead of libm calls, so the compiler
/// turns them into SIMD code (libm's scalar `expf` would block vectorisation).

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
        for i in 0..<n { let v = b[i]; b[i] = 0.5 * v * (1 + vectorErf(v * 0.70710678118654752)) }
    case .quickGELU:
        for i in 0..<n { let v = b[i]; b[i] = v / (1 + vectorExp(-1.702 * v)) }
    case .silu:
        for i in 0..<n { let v = b[i]; b[i] = v / (1 + vectorExp(-v)) }
    case .relu:
        for i in 0..<n { b[i] = max(b[i], 0) }
    }
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
    for i in 0..<n { x[i] = vectorExp(x[i] - m) }
    let inv = 1 / sumValues(x, n)
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

/// `exp(x)` to about 2 ulp, branch-free so loops over it vectorise.
///
/// Range reduction `x = n·ln2 + r` with |r| ≤ ln2/2, a degree-6 Taylor/Horner polynomial
/// for `e^r`, and `2^n` built in the exponent bits. Inputs below -87.3 flush to 0 and above
/// 88.7 saturate to +infinity; NaN propagates.
@inline(__always)
public func vectorExp(_ x: Float) -> Float {
    // NaN is replaced before the Int32 conversion below (which traps on NaN); the result is fixed up at the end.
    let clamped = x != x ? 0 : min(max(x, -87.33654), 88.72283)
    // Round to nearest with the 1.5·2²³ trick: `rounded()` becomes a libm call on the
    // baseline x86-64 target (no SSE4.1 `roundps`), which would stop vectorisation.
    let shifted = clamped * 1.44269504088896341 + 12_582_912
    let n = shifted - 12_582_912
    // Cody–Waite split of ln 2 keeps r exact enough for float.
    let r = (clamped - n * 0.693145751953125) - n * 1.42860682030941723212e-6
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    // 2^n for n ∈ [-126, 128], built in two halves so n = 128 (→ inf) stays representable.
    // The integer comes from the float's bits (n + 1.5·2²³ puts n in the low mantissa bits):
    // `Int32(n)` would add a range-check branch that stops the loop from vectorising.
    let ni = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000
    let half = ni >> 1
    let s1 = Float(bitPattern: UInt32(bitPattern: (half &+ 127) << 23))
    let s2 = Float(bitPattern: UInt32(bitPattern: (ni &- half &+ 127) << 23))
    let y = p * s1 * s2
    return x < -87.33654 ? 0 : (x > 88.72283 ? .infinity : (x != x ? x : y))
}

/// `erf(x)`, branch-free: Numerical Recipes' `erfcc` Chebyshev fit,
/// `erfc(|x|) = t·exp(-x² + P(t))` with `t = 1/(1 + |x|/2)` (fractional error < 1.2e-7).
@inline(__always)
public func vectorErf(_ x: Float) -> Float {
    let a = abs(x)
    let t = 1 / (1 + 0.5 * a)
    var p: Float = 0.17087277
    p = p * t - 0.82215223
    p = p * t + 1.48851587
    p = p * t - 1.13520398
    p = p * t + 0.27886807
    p = p * t - 0.18628806
    p = p * t + 0.09678418
    p = p * t + 0.37409196
    p = p * t + 1.00002368
    p = p * t - 1.26551223
    let erfc = t * vectorExp(-a * a + p)
    let r = 1 - erfc
    return x < 0 ? -r : r
}
