/// IEEE half (F16) and bfloat16 (BF16) ↔ float32 conversion on raw bit patterns.
///
/// Written on integers rather than `Float16` so it is available on every platform Swift
/// supports and the conversion loops vectorise.

/// Converts one IEEE-754 binary16 bit pattern to `Float` exactly (subnormals, ±inf, NaN included).
@inline(__always)
public func floatFromHalfBits(_ bits: UInt16) -> Float {
    let h = UInt32(bits)
    let sign = (h & 0x8000) << 16
    let exponent = (h >> 10) & 0x1f
    let mantissa = h & 0x3ff
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2⁻²⁴, exact in float.
        let magnitude = Float(mantissa) * 5.9604644775390625e-8
        return Float(bitPattern: magnitude.bitPattern | sign)
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Converts a `Float` to the nearest binary16 bit pattern (round to nearest, ties to even;
/// overflow → ±inf; NaN stays NaN).
public func halfBitsFromFloat(_ value: Float) -> UInt16 {
    let f = value.bitPattern
    let sign = UInt16((f >> 16) & 0x8000)
    let exponent = Int((f >> 23) & 0xff)
    let mantissa = f & 0x7f_ffff
    if exponent == 0xff {
        return sign | 0x7c00 | (mantissa != 0 ? 0x200 : 0)
    }
    let e = exponent - 127 + 15
    if e >= 31 { return sign | 0x7c00 }
    if e <= 0 {
        // Subnormal half (or underflow to zero): shift the full significand into place with rounding.
        if e < -10 { return sign }
        let significand = mantissa | 0x80_0000
        let shift = UInt32(14 - e)
        var half = significand >> shift
        let remainder = significand & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if remainder > halfway || (remainder == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | (mantissa >> 13)
    let remainder = mantissa & 0x1fff
    // Rounding may carry into the exponent (and up to inf), which is the correct result.
    if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1) { half += 1 }
    return sign | UInt16(half)
}

/// Converts one bfloat16 bit pattern to `Float` (exact: bf16 is the top half of a float).
@inline(__always)
public func floatFromBFloat16Bits(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Converts a `Float` to the nearest bfloat16 bit pattern (round to nearest even; NaN stays NaN).
public func bfloat16BitsFromFloat(_ value: Float) -> UInt16 {
    let f = value.bitPattern
    if value.isNaN { return UInt16(f >> 16) | 0x40 }
    let rounding = 0x7fff + ((f >> 16) & 1)
    return UInt16((f &+ rounding) >> 16)
}
