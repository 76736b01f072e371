import Foundation

extension Image {
    /// The `width` x `height` region whose top-left corner is (`x`, `y`), as Pillow's `crop`:
    /// parts of the region outside the image are filled with zeros. Negative sizes count as 0.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image {
        let outWidth = max(cropWidth, 0), outHeight = max(cropHeight, 0), c = channels
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * c)
        // Intersection of the crop with the image, in source coordinates.
        let x0 = max(x, 0), x1 = min(x + outWidth, width)
        let y0 = max(y, 0), y1 = min(y + outHeight, height)
        if x0 < x1 && y0 < y1 {
            let span = (x1 - x0) * c
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for sy in y0..<y1 {
                        let from = (sy * width + x0) * c
                        let to = ((sy - y) * outWidth + (x0 - x)) * c
                        dst.baseAddress!.advanced(by: to).update(from: src.baseAddress!.advanced(by: from), count: span)
                    }
                }
            }
        }
        return Image(width: outWidth, height: outHeight, channels: c, pixels: out)
    }

    /// Centre crop. With the default `.torchvision` convention this is torchvision's
    /// `center_crop`: an axis the crop exceeds is first zero-padded by `(crop - size) / 2` before
    /// (the rest after), then `top = int(round((h - ch) / 2.0))`, `left = int(round((w - cw) / 2.0))`
    /// with Python's round-half-to-even. `.transformers` follows Hugging Face's `center_crop`
    /// (used by CLIPImageProcessor, both backends): `top = (h - ch) // 2`, and an exceeded axis is
    /// padded by `ceil((crop - size) / 2)` before. The two differ by one pixel when `h - ch` is odd.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int,
                              convention: CenterCropConvention = .torchvision) -> Image {
        let outWidth = max(cropWidth, 0), outHeight = max(cropHeight, 0)
        // Express the crop origin in the original image's coordinates; negative means the
        // window starts inside the zero padding.
        let left = convention.origin(size: width, crop: outWidth)
        let top = convention.origin(size: height, crop: outHeight)
        return cropped(x: left, y: top, width: outWidth, height: outHeight)
    }

    /// Scales so the shorter side becomes `size`, keeping the aspect ratio as CLIPImageProcessor
    /// does (`shortest_edge`): the long side becomes `int(size * long / short)` (truncated), and
    /// a square counts its width as the short side.
    public func resizedShortestSide(to size: Int, filter: ResampleFilter) -> Image {
        guard width > 0, height > 0 else { return self }
        if width <= height {
            let long = Int(Double(size) * Double(height) / Double(width))
            return resized(width: size, height: long, filter: filter)
        }
        let long = Int(Double(size) * Double(width) / Double(height))
        return resized(width: long, height: size, filter: filter)
    }

    /// Channel-planar floats for model input: `(pixel * rescale - mean[c]) / std[c]`, laid out
    /// `[channel][row][column]`. `mean` and `std` give one value per channel, or one value for all.
    public func normalizedCHW(mean: [Float], std: [Float], rescale: Float = 1 / 255) -> [Float] {
        precondition(mean.count == channels || mean.count == 1, "mean needs 1 or \(channels) values")
        precondition(std.count == channels || std.count == 1, "std needs 1 or \(channels) values")
        let plane = width * height, c = channels
        var out = [Float](repeating: 0, count: plane * c)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for ch in 0..<c {
                    let m = mean.count == 1 ? mean[0] : mean[ch]
                    let s = std.count == 1 ? std[0] : std[ch]
                    let base = ch * plane
                    for i in 0..<plane {
                        dst[base + i] = (Float(src[i * c + ch]) * rescale - m) / s
                    }
                }
            }
        }
        return out
    }
}

/// Which library's centre-crop arithmetic `Image.centerCropped` reproduces.
public enum CenterCropConvention: String, Sendable, CaseIterable {
    /// torchvision `center_crop`: round-half-to-even offset; pad `(crop - size) // 2` before.
    case torchvision
    /// Hugging Face transformers `center_crop` (CLIPImageProcessor): floor offset; pad
    /// `ceil((crop - size) / 2)` before.
    case transformers

    /// The crop's first index along one axis, in source coordinates.
    func origin(size: Int, crop: Int) -> Int {
        let difference = size - crop
        switch self {
        case .torchvision:
            if difference < 0 { return -((-difference) / 2) }
            // int(round(d / 2.0)): halves go to the even neighbour.
            let half = difference / 2
            return difference % 2 == 0 || half % 2 == 0 ? half : half + 1
        case .transformers:
            if difference < 0 { return -((-difference + 1) / 2) }
            return difference / 2
        }
    }
}
