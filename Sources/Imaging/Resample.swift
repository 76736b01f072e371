import Foundation

/// Resampling filters of Pillow's `Image.resize`, with Pillow's kernels and supports.
public enum ResampleFilter: String, Sendable, CaseIterable {
    /// Nearest neighbour (Pillow's affine-scale path, not a convolution).
    case nearest
    /// Triangle kernel, support 1.
    case bilinear
    /// Keys cubic kernel with a = -0.5, support 2.
    case bicubic
    /// Lanczos-3 windowed sinc, support 3.
    case lanczos

    /// Kernel half-width in source pixels before antialias scaling.
    var support: Double {
        switch self {
        case .nearest: return 0
        case .bilinear: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    /// The kernel, written exactly as Pillow's `Resample.c` writes it (same operation order, so
    /// the same doubles and hence the same fixed-point coefficients).
    func weight(_ value: Double) -> Double {
        switch self {
        case .nearest:
            return 0
        case .bilinear:
            let x = value < 0 ? -value : value
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            let x = value < 0 ? -value : value
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard -3 <= value, value < 3 else { return 0 }
            return Self.sinc(value) * Self.sinc(value / 3)
        }
    }

    private static func sinc(_ value: Double) -> Double {
        if value == 0 { return 1 }
        let x = value * Double.pi
        return sin(x) / x
    }
}

/// Fixed-point convolution weights for one axis, as Pillow's `precompute_coeffs` followed by
/// `normalize_coeffs_8bpc`.
struct ResampleCoefficients {
    /// Bits of fraction in each weight: 32 - 8 - 2, leaving room for the sign and overshoot.
    static let precisionBits = 22

    /// Maximum taps per output sample.
    let kernelSize: Int
    /// For each output sample: first source index, then the number of taps used.
    let bounds: [Int]
    /// `outSize * kernelSize` weights scaled by 2^22, rounded half away from zero.
    let weights: [Int32]

    init(inSize: Int, in0: Float = 0, in1: Float, outSize: Int, filter: ResampleFilter) {
        // Pillow computes the box width in float, then widens to double.
        let scale = Double(in1 - in0) / Double(outSize)
        // Antialiasing: when shrinking, stretch the kernel by the shrink factor.
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let kernelSize = Int(ceil(support)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var weights = [Int32](repeating: 0, count: outSize * kernelSize)
        var taps = [Double](repeating: 0, count: kernelSize)
        let inverseScale = 1 / filterScale
        let one = Double(1 << Self.precisionBits)
        for xx in 0..<outSize {
            let center = Double(in0) + (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero; Swift's Int(_: Double) does the same.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * inverseScale)
                taps[x] = w
                total += w
            }
            for x in 0..<max(xmax, 0) {
                let w = total != 0 ? taps[x] / total : taps[x]
                weights[xx * kernelSize + x] = w < 0 ? Int32(-0.5 + w * one) : Int32(0.5 + w * one)
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = max(xmax, 0)
        }
        self.kernelSize = kernelSize
        self.bounds = bounds
        self.weights = weights
    }
}

extension Image {
    /// Resizes to `width` x `height`, bit-exact with Pillow 13's `Image.resize(size, resample)`
    /// (no `box`, `reducing_gap=None`) for 8-bit L/RGB/RGBA images:
    /// antialiased separable convolution with 22-bit fixed-point weights, horizontal pass (over
    /// only the rows the vertical pass needs) then vertical pass, or vertical first when the
    /// height shrinks much more than the width (Pillow 13's order, see `verticalPassFirst`), each
    /// pass rounded and clipped to 8 bits, a pass skipped when its axis keeps its size. RGBA is
    /// premultiplied by alpha before and un-premultiplied after, as Pillow does via "RGBa". `.nearest` follows Pillow's affine
    /// scaling path. An unchanged size returns a copy. A zero width or height gives an empty image.
    public func resized(width: Int, height: Int, filter: ResampleFilter) -> Image {
        precondition(width >= 0 && height >= 0, "resize target must not be negative")
        if width == self.width && height == self.height { return self }
        if width == 0 || height == 0 {
            return Image(width: width, height: height, channels: channels)
        }
        if filter == .nearest { return resizedNearest(width: width, height: height) }
        if channels == 4 {
            return premultiplied().convolved(width: width, height: height, filter: filter).unpremultiplied()
        }
        return convolved(width: width, height: height, filter: filter)
    }

    /// Pillow's `ImagingResampleInner` for 8-bit images.
    private func convolved(width outWidth: Int, height outHeight: Int, filter: ResampleFilter) -> Image {
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        let vertical = ResampleCoefficients(inSize: height, in1: Float(height), outSize: outHeight, filter: filter)
        let horizontal = ResampleCoefficients(inSize: width, in1: Float(width), outSize: outWidth, filter: filter)
        if needHorizontal && needVertical && Self.verticalPassFirst(inWidth: width, inHeight: height,
                                                                   outWidth: outWidth, outHeight: outHeight) {
            // Every column goes through the vertical pass, then every kept row through the
            // horizontal one. The 8-bit rounding in between differs from the other order.
            let rows = verticalPass(vertical, outHeight: outHeight, rowOffset: 0)
            return rows.horizontalPass(horizontal, outWidth: outWidth, firstRow: 0, rows: outHeight)
        }
        var source = self
        var rowOffset = 0
        if needHorizontal {
            // Only source rows some output row reads: from the first tap of the first output row
            // to the last tap of the last.
            let firstRow = vertical.bounds[0]
            let lastRow = vertical.bounds[2 * outHeight - 2] + vertical.bounds[2 * outHeight - 1]
            source = horizontalPass(horizontal, outWidth: outWidth, firstRow: firstRow, rows: lastRow - firstRow)
            rowOffset = firstRow
        }
        if needVertical {
            return source.verticalPass(vertical, outHeight: outHeight, rowOffset: rowOffset)
        }
        return source
    }

    /// Pillow 13's pass order (`ImagingResampleInner`, python-pillow/Pillow#9549): the vertical
    /// pass runs first when the height loses more than twice as many pixels as the width does,
    /// counted in whole pixels (`ysize_in - ysize > (xsize_in - xsize) * 2`, so a widening always
    /// qualifies when the height shrinks). Otherwise horizontal first, as Pillow always did before.
    static func verticalPassFirst(inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int) -> Bool {
        let heightLoss = inHeight - outHeight
        return heightLoss > 0 && heightLoss > (inWidth - outWidth) * 2
    }

    private func horizontalPass(_ coefficients: ResampleCoefficients, outWidth: Int, firstRow: Int, rows: Int) -> Image {
        let c = channels, inWidth = width, ksize = coefficients.kernelSize
        let half: Int32 = 1 << (ResampleCoefficients.precisionBits - 1)
        var out = [UInt8](repeating: 0, count: outWidth * rows * c)
        pixels.withUnsafeBufferPointer { src in
            coefficients.weights.withUnsafeBufferPointer { weights in
                coefficients.bounds.withUnsafeBufferPointer { bounds in
                    out.withUnsafeMutableBufferPointer { dst in
                        for yy in 0..<rows {
                            let inRow = (yy + firstRow) * inWidth * c
                            let outRow = yy * outWidth * c
                            for xx in 0..<outWidth {
                                let xmin = bounds[2 * xx], count = bounds[2 * xx + 1], k = xx * ksize
                                let start = inRow + xmin * c, o = outRow + xx * c
                                // All channels of a pixel in one sweep over the taps, as Pillow
                                // does; the per-count branches let the compiler keep sums in
                                // registers.
                                switch c {
                                case 1:
                                    var s0 = half
                                    for x in 0..<count { s0 &+= Int32(src[start + x]) &* weights[k + x] }
                                    dst[o] = clip8(s0)
                                case 3:
                                    var s0 = half, s1 = half, s2 = half
                                    var i = start
                                    for x in 0..<count {
                                        let w = weights[k + x]
                                        s0 &+= Int32(src[i]) &* w
                                        s1 &+= Int32(src[i + 1]) &* w
                                        s2 &+= Int32(src[i + 2]) &* w
                                        i += 3
                                    }
                                    dst[o] = clip8(s0); dst[o + 1] = clip8(s1); dst[o + 2] = clip8(s2)
                                default:
                                    var s0 = half, s1 = half, s2 = half, s3 = half
                                    var i = start
                                    for x in 0..<count {
                                        let w = weights[k + x]
                                        s0 &+= Int32(src[i]) &* w
                                        s1 &+= Int32(src[i + 1]) &* w
                                        s2 &+= Int32(src[i + 2]) &* w
                                        s3 &+= Int32(src[i + 3]) &* w
                                        i += 4
                                    }
                                    dst[o] = clip8(s0); dst[o + 1] = clip8(s1); dst[o + 2] = clip8(s2); dst[o + 3] = clip8(s3)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Image(width: outWidth, height: rows, channels: c, pixels: out)
    }

    private func verticalPass(_ coefficients: ResampleCoefficients, outHeight: Int, rowOffset: Int) -> Image {
        let rowLength = width * channels, ksize = coefficients.kernelSize
        var out = [UInt8](repeating: 0, count: rowLength * outHeight)
        var sums = [Int32](repeating: 0, count: rowLength)
        pixels.withUnsafeBufferPointer { src in
            coefficients.weights.withUnsafeBufferPointer { weights in
                coefficients.bounds.withUnsafeBufferPointer { bounds in
                    out.withUnsafeMutableBufferPointer { dst in
                        sums.withUnsafeMutableBufferPointer { acc in
                            for yy in 0..<outHeight {
                                let ymin = bounds[2 * yy] - rowOffset, count = bounds[2 * yy + 1], k = yy * ksize
                                // Accumulate whole rows at a time: same integer sums as Pillow's
                                // per-pixel loop, in a cache-friendly order.
                                for i in 0..<rowLength { acc[i] = 1 << (ResampleCoefficients.precisionBits - 1) }
                                for y in 0..<count {
                                    let weight = weights[k + y], inRow = (ymin + y) * rowLength
                                    for i in 0..<rowLength { acc[i] &+= Int32(src[inRow + i]) &* weight }
                                }
                                let outRow = yy * rowLength
                                for i in 0..<rowLength { dst[outRow + i] = clip8(acc[i]) }
                            }
                        }
                    }
                }
            }
        }
        return Image(width: width, height: outHeight, channels: channels, pixels: out)
    }

    /// Pillow's `ImagingScaleAffine` as used by `resize(..., NEAREST)`: source coordinates are
    /// accumulated in doubles from half a step, exactly as Pillow steps them.
    private func resizedNearest(width outWidth: Int, height outHeight: Int) -> Image {
        let c = channels
        let xStep = Double(Float(width)) / Double(outWidth)
        let yStep = Double(Float(height)) / Double(outHeight)
        var columns = [Int](repeating: -1, count: outWidth)
        var xo = xStep * 0.5
        for x in 0..<outWidth {
            let xin = xo < 0 ? -1 : Int(xo)
            if xin >= 0 && xin < width { columns[x] = xin }
            xo += xStep
        }
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * c)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var yo = yStep * 0.5
                for y in 0..<outHeight {
                    let yin = yo < 0 ? -1 : Int(yo)
                    yo += yStep
                    guard yin >= 0 && yin < height else { continue }
                    let inRow = yin * width * c, outRow = y * outWidth * c
                    for x in 0..<outWidth where columns[x] >= 0 {
                        for ch in 0..<c { dst[outRow + x * c + ch] = src[inRow + columns[x] * c + ch] }
                    }
                }
            }
        }
        return Image(width: outWidth, height: outHeight, channels: c, pixels: out)
    }

    /// Pillow's RGBA -> RGBa: each colour times alpha / 255, rounded via MULDIV255.
    func premultiplied() -> Image {
        var out = pixels
        out.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let alpha = UInt32(p[i + 3])
                for ch in 0..<3 {
                    let t = UInt32(p[i + ch]) * alpha + 128
                    p[i + ch] = UInt8(truncatingIfNeeded: ((t >> 8) + t) >> 8)
                }
            }
        }
        return Image(width: width, height: height, channels: 4, pixels: out)
    }

    /// Pillow's RGBa -> RGBA: colour * 255 / alpha, truncated and clipped; alpha 0 or 255 as is.
    func unpremultiplied() -> Image {
        var out = pixels
        out.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let alpha = UInt32(p[i + 3])
                guard alpha != 0 && alpha != 255 else { continue }
                for ch in 0..<3 { p[i + ch] = UInt8(min(255 * UInt32(p[i + ch]) / alpha, 255)) }
            }
        }
        return Image(width: width, height: height, channels: 4, pixels: out)
    }
}

/// Pillow's `clip8`: drop the fraction bits (arithmetic shift) and clamp to 0...255.
@inline(__always)
private func clip8(_ sum: Int32) -> UInt8 {
    let value = sum >> Int32(ResampleCoefficients.precisionBits)
    return value < 0 ? 0 : (value > 255 ? 255 : UInt8(truncatingIfNeeded: value))
}
