import Foundation

/// A reproduction of PyTorch's CPU random generator, so that a seed gives the same noise as
/// `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` — and therefore the
/// same Stable Diffusion latents as diffusers.
///
/// What it matches (aten `CPUGeneratorImpl`, `core/DistributionsHelper.h`,
/// `native/cpu/DistributionTemplates.h`, `native/cpu/avx_mathfun.h`):
/// - the engine is MT19937 seeded with the low 32 bits of the seed;
/// - a float32 uniform is `(random() & (2²⁴−1)) · 2⁻²⁴`; a double uniform takes `random64()`
///   (`hi << 32 | lo`, two draws) masked to 53 bits;
/// - `randn` of a float32 tensor with at least 16 elements fills the whole buffer with uniforms
///   first, then converts it in place 16 at a time by Box–Muller over the pairs `(j, j+8)`
///   (`u1 = 1 − data[j]`, `u2 = data[j+8]`); when the size is not a multiple of 16 the *last 16*
///   values are redrawn and converted again. The conversion is `normal_fill_16_AVX2`: Cephes-style
///   `log256_ps` / `sincos256_ps` float polynomials evaluated with fused multiply-adds where GCC
///   contracts them, and `θ = float(2π) · u2` in float;
/// - fewer than 16 elements take the scalar path: `normal_distribution<double>`, which draws two
///   double uniforms, returns `r·cos θ` and caches `r·sin θ` in the generator for the next call.
///
/// Verified bit for bit against torch 2.13 (x86-64, AVX-512 machine) by `SDNoiseTests`; other
/// torch builds that take the non-AVX2 path (`std::log`/`cos`/`sin`) differ in the last bit of a
/// fraction of values.
public struct TorchGenerator: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624
    /// `next_double_normal_sample`: the cached second value of the scalar Box–Muller path.
    private var cachedNormal: Double?

    /// `torch.Generator("cpu").manual_seed(seed)`.
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            let prev = state[i - 1]
            state[i] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(i)
        }
        index = 624
    }

    /// One 32-bit draw of the MT19937 engine.
    public mutating func nextUInt32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for k in 0..<624 {
            let y = (state[k] & 0x8000_0000) | (state[(k + 1) % 624] & 0x7FFF_FFFF)
            state[k] = state[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
        index = 0
    }

    /// `uniform_real_distribution<float>(0, 1)`.
    public mutating func uniformFloat() -> Float {
        Float(nextUInt32() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// `uniform_real_distribution<double>(0, 1)` over `random64()`.
    public mutating func uniformDouble() -> Double {
        let hi = UInt64(nextUInt32()), lo = UInt64(nextUInt32())
        return Double(((hi << 32) | lo) & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `normal_distribution<double>(0, 1)`: Box–Muller with the second value cached.
    public mutating func normalDouble() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2.0 * log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }

    /// `torch.randn(count)` in float32, advancing the generator as torch does.
    public mutating func randn(count n: Int) -> [Float] {
        guard n > 0 else { return [] }
        if n < 16 {
            return (0..<n).map { _ in Float(normalDouble()) }
        }
        var data = [Float](repeating: 0, count: n)
        for i in 0..<n { data[i] = uniformFloat() }
        data.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 16 <= n {
                torchNormalFill16(p.baseAddress! + i)
                i += 16
            }
        }
        if n % 16 != 0 {
            for i in (n - 16)..<n { data[i] = uniformFloat() }
            data.withUnsafeMutableBufferPointer { p in torchNormalFill16(p.baseAddress! + n - 16) }
        }
        return data
    }

    /// `torch.randn(shape)` as a tensor.
    public mutating func randn(shape: [Int]) throws -> Tensor {
        let n = try Tensor.elementCount(shape)
        return Tensor(uncheckedShape: shape, data: randn(count: n))
    }
}

/// `normal_fill_16_AVX2` with mean 0 and std 1, one lane at a time.
@inline(__always)
private func torchNormalFill16(_ d: UnsafeMutablePointer<Float>) {
    let twoPi = Float(2.0 * Double.pi)
    for j in 0..<8 {
        let u1 = 1 - d[j]
        let u2 = d[j + 8]
        let radius = (-2 * cephesLog(u1)).squareRoot()
        let (s, c) = cephesSinCos(twoPi * u2)
        d[j] = radius * c
        d[j + 8] = radius * s
    }
}

/// `log256_ps` for one lane (inputs in (0, 1] here; non-positive inputs give NaN).
@inline(__always)
func cephesLog(_ input: Float) -> Float {
    if input <= 0 { return .nan }
    let xn = max(input, Float(bitPattern: 0x0080_0000))
    let bits = xn.bitPattern
    var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
    var x = Float(bitPattern: (bits & ~UInt32(0x7F80_0000)) | Float(0.5).bitPattern)
    let lessThanSqrtHalf = x < Float(0.707106781186547524)
    let tmp: Float = lessThanSqrtHalf ? x : 0
    x = x - 1
    e = e - (lessThanSqrtHalf ? 1 : 0)
    x = x + tmp
    let z = x * x
    var y: Float = 7.0376836292E-2
    y = y.fma(x, -1.1514610310E-1)
    y = y.fma(x, 1.1676998740E-1)
    y = y.fma(x, -1.2420140846E-1)
    y = y.fma(x, 1.4249322787E-1)
    y = y.fma(x, -1.6668057665E-1)
    y = y.fma(x, 2.0000714765E-1)
    y = y.fma(x, -2.4999993993E-1)
    y = y.fma(x, 3.3333331174E-1)
    y = y * x
    y = y.fma(z, e * -2.12194440e-4)
    y = (-z).fma(0.5, y)
    return e.fma(0.693359375, x + y)
}

/// `sincos256_ps` for one lane: (sin x, cos x).
@inline(__always)
func cephesSinCos(_ input: Float) -> (Float, Float) {
    var x = abs(input)
    var signSin: UInt32 = input.bitPattern & 0x8000_0000
    var j = Int32(x * Float(1.27323954473516))   // truncation, as cvttps
    j = (j &+ 1) & ~1
    let y = Float(j)
    let swapSignSin = UInt32(bitPattern: (j & 4) << 29)
    let polyMask = (j & 2) == 0
    x = y.fma(-0.78515625, x)
    x = y.fma(-2.4187564849853515625e-4, x)
    x = y.fma(-3.77489497744594108e-8, x)
    let signCos = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
    signSin ^= swapSignSin
    let z = x * x
    var c: Float = 2.443315711809948E-005
    c = c.fma(z, -1.388731625493765E-003)
    c = c.fma(z, 4.166664568298827E-002)
    c = c * z
    c = c.fma(z, -(z * 0.5))
    c = c + 1
    var s: Float = -1.9515295891E-4
    s = s.fma(z, 8.3321608736E-3)
    s = s.fma(z, -1.6666654611E-1)
    s = s * z
    s = s.fma(x, x)
    let sinValue = polyMask ? s : c
    let cosValue = polyMask ? c : s
    return (Float(bitPattern: sinValue.bitPattern ^ signSin), Float(bitPattern: cosValue.bitPattern ^ signCos))
}

extension Float {
    /// `self · b + c` with one rounding.
    @inline(__always)
    fileprivate func fma(_ b: Float, _ c: Float) -> Float { c.addingProduct(self, b) }
}
