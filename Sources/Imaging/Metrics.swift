import Foundation

/// Full-reference pixel metrics between two images of equal geometry.
public enum PixelMetrics {
    /// Peak signal-to-noise ratio in dB with data range 255, over all pixels and channels:
    /// `10 * log10(255^2 / MSE)`. Identical images give `.infinity`.
    public static func psnr(_ a: Image, _ b: Image) throws -> Double {
        try checkSameGeometry(a, b, metric: "PSNR")
        var sum: UInt64 = 0
        a.pixels.withUnsafeBufferPointer { x in
            b.pixels.withUnsafeBufferPointer { y in
                for i in 0..<x.count {
                    let d = Int64(x[i]) - Int64(y[i])
                    sum &+= UInt64(d * d)
                }
            }
        }
        if sum == 0 { return .infinity }
        let mse = Double(sum) / Double(a.pixels.count)
        return 10 * log10(255.0 * 255.0 / mse)
    }

    /// Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5,
    /// truncated at 3.5 sigma), K1 0.01, K2 0.03, L 255 and population covariances, computed per
    /// channel and averaged. Matches `skimage.metrics.structural_similarity(a, b,
    /// channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// data_range=255)`: the SSIM map is averaged over pixels at least 5 from every border, so
    /// both sides must be at least 11 pixels.
    public static func ssim(_ a: Image, _ b: Image) throws -> Double {
        try checkSameGeometry(a, b, metric: "SSIM")
        guard a.width >= windowSize, a.height >= windowSize else {
            throw ImageError(source: "<memory>", kind: .invalidArgument,
                             message: "SSIM needs images at least \(windowSize)x\(windowSize), got \(a.width)x\(a.height)")
        }
        var total = 0.0
        for channel in 0..<a.channels {
            total += ssimChannel(a, b, channel: channel)
        }
        return total / Double(a.channels)
    }

    static let radius = 5  // int(3.5 * 1.5 + 0.5), as scipy.ndimage sizes the kernel
    static let windowSize = 2 * radius + 1

    /// Normalised 1-D Gaussian taps for sigma 1.5 over -radius...radius.
    static let gaussianTaps: [Double] = {
        let sigma = 1.5
        let raw = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let sum = raw.reduce(0, +)
        return raw.map { $0 / sum }
    }()

    /// Mean SSIM of one channel over the valid (uncropped) region. Only outputs whose full
    /// window lies inside the image are needed, so the filters never touch padding.
    private static func ssimChannel(_ a: Image, _ b: Image, channel: Int) -> Double {
        let w = a.width, h = a.height, stride = a.channels
        let outW = w - 2 * radius, outH = h - 2 * radius
        // Five planes filtered together: x, y, x*x, y*y, x*y.
        var horizontal = [Double](repeating: 0, count: 5 * h * outW)
        let taps = gaussianTaps
        a.pixels.withUnsafeBufferPointer { pa in
            b.pixels.withUnsafeBufferPointer { pb in
                horizontal.withUnsafeMutableBufferPointer { hp in
                    let plane = h * outW
                    for y in 0..<h {
                        for ox in 0..<outW {
                            var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
                            for k in 0..<windowSize {
                                let index = (y * w + ox + k) * stride + channel
                                let x = Double(pa[index]), v = Double(pb[index]), t = taps[k]
                                sx += t * x; sy += t * v
                                sxx += t * (x * x); syy += t * (v * v); sxy += t * (x * v)
                            }
                            let o = y * outW + ox
                            hp[o] = sx; hp[plane + o] = sy
                            hp[2 * plane + o] = sxx; hp[3 * plane + o] = syy; hp[4 * plane + o] = sxy
                        }
                    }
                }
            }
        }
        let c1 = (0.01 * 255.0) * (0.01 * 255.0)
        let c2 = (0.03 * 255.0) * (0.03 * 255.0)
        var sum = 0.0
        horizontal.withUnsafeBufferPointer { hp in
            let plane = h * outW
            for oy in 0..<outH {
                for ox in 0..<outW {
                    var m = (0.0, 0.0, 0.0, 0.0, 0.0)
                    for k in 0..<windowSize {
                        let o = (oy + k) * outW + ox, t = taps[k]
                        m.0 += t * hp[o]; m.1 += t * hp[plane + o]
                        m.2 += t * hp[2 * plane + o]; m.3 += t * hp[3 * plane + o]; m.4 += t * hp[4 * plane + o]
                    }
                    let (ux, uy, uxx, uyy, uxy) = m
                    let vx = uxx - ux * ux, vy = uyy - uy * uy, vxy = uxy - ux * uy
                    let numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
                    let denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
                    sum += numerator / denominator
                }
            }
        }
        return sum / Double(outW * outH)
    }

    private static func checkSameGeometry(_ a: Image, _ b: Image, metric: String) throws {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else {
            throw ImageError(source: "<memory>", kind: .invalidArgument,
                             message: "\(metric) needs images of the same size, got \(a.width)x\(a.height)x\(a.channels) "
                                 + "and \(b.width)x\(b.height)x\(b.channels)")
        }
    }
}
