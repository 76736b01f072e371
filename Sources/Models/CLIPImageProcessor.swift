import Foundation
import Imaging
import Tensor

/// CLIP image preprocessing as transformers' `CLIPImageProcessor` (PIL backend) does it,
/// configured by `preprocessor_config.json`:
/// convert to RGB (alpha composited onto white) → resize the shortest side with PIL's bicubic filter (`Imaging`'s PIL-exact
/// resampler) → center crop (offsets `(size - crop) // 2`, zero padding when the crop is
/// larger) → rescale (`× rescale_factor`) → normalise with `image_mean` / `image_std`.
public struct CLIPImageProcessor: Decodable, Sendable, Equatable {
    public var doConvertRGB = true
    public var doResize = true
    /// `size.shortest_edge` (or a square `size.height`/`width` when given that way).
    public var shortestEdge: Int? = 224
    public var resizeHeight: Int?
    public var resizeWidth: Int?
    /// PIL resampling code (`3` = bicubic, the only one CLIP uses).
    public var resample = 3
    public var doCenterCrop = true
    public var cropHeight = 224
    public var cropWidth = 224
    public var doRescale = true
    public var rescaleFactor: Float = 1.0 / 255.0
    public var doNormalize = true
    public var imageMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    /// CLIP's defaults at another resolution (for folders without `preprocessor_config.json`).
    public init(imageSize: Int = 224) {
        shortestEdge = imageSize
        cropHeight = imageSize
        cropWidth = imageSize
    }

    /// Reads `preprocessor_config.json`; unknown keys are ignored, known keys are type-checked.
    public init(configURL url: URL) throws {
        self = try ConfigFile.read(CLIPImageProcessor.self, from: url)
    }

    /// `size` / `crop_size`: a number, or `{shortest_edge}` / `{height, width}`.
    private struct SizeKeys: Decodable {
        var shortestEdge: Int?, height: Int?, width: Int?
        enum CodingKeys: String, CodingKey { case shortestEdge = "shortest_edge", height, width }
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: ConfigKey.self)
        func key(_ name: String) -> ConfigKey { ConfigKey(name) }
        /// One number, or three (per channel).
        func triple(_ name: String, _ fallback: [Float]) throws -> [Float] {
            if let n = try? c.decodeIfPresent(Float.self, forKey: key(name)) { return [n, n, n] }
            let a = try c.value(key(name), default: fallback)
            guard a.count == 3 else { throw c.invalid(key(name), "expected 3 numbers") }
            return a
        }
        doConvertRGB = try c.value(key("do_convert_rgb"), default: doConvertRGB)
        doResize = try c.value(key("do_resize"), default: doResize)
        doCenterCrop = try c.value(key("do_center_crop"), default: doCenterCrop)
        doRescale = try c.value(key("do_rescale"), default: doRescale)
        doNormalize = try c.value(key("do_normalize"), default: doNormalize)
        resample = try c.value(key("resample"), default: resample)
        rescaleFactor = try c.value(key("rescale_factor"), default: rescaleFactor)
        imageMean = try triple("image_mean", imageMean)
        imageStd = try triple("image_std", imageStd)
        if let n = try? c.decodeIfPresent(Int.self, forKey: key("size")) {
            shortestEdge = n
        } else if let size = try c.decodeIfPresent(SizeKeys.self, forKey: key("size")) {
            if let s = size.shortestEdge {
                shortestEdge = s
            } else if let h = size.height, let w = size.width {
                shortestEdge = nil
                resizeHeight = h
                resizeWidth = w
            } else {
                throw c.invalid(key("size"), "expected 'shortest_edge' or 'height' and 'width'")
            }
        }
        if let n = try? c.decodeIfPresent(Int.self, forKey: key("crop_size")) {
            cropHeight = n
            cropWidth = n
        } else if let crop = try c.decodeIfPresent(SizeKeys.self, forKey: key("crop_size")) {
            guard let h = crop.height, let w = crop.width else { throw c.invalid(key("crop_size"), "expected 'height' and 'width'") }
            cropHeight = h
            cropWidth = w
        }
        for (name, v) in [("size", shortestEdge ?? resizeHeight ?? 1), ("crop_size", min(cropHeight, cropWidth))] where v <= 0 {
            throw c.invalid(key(name), "expected a positive integer, got \(v)")
        }
        guard resample == 3 else {
            throw c.invalid(key("resample"), "only 3 (bicubic) is supported, got \(resample)")
        }
        guard imageStd.allSatisfy({ $0 != 0 }) else { throw c.invalid(key("image_std"), "values must be non-zero") }
        guard doCenterCrop || (resizeHeight != nil && resizeWidth != nil) else {
            throw c.invalid(key("do_center_crop"), "without do_center_crop the output size depends on the image; set a square 'size' or enable cropping")
        }
    }

    /// Height of the produced pixel arrays.
    public var outputHeight: Int { doCenterCrop ? cropHeight : (resizeHeight ?? shortestEdge ?? 0) }
    /// Width of the produced pixel arrays.
    public var outputWidth: Int { doCenterCrop ? cropWidth : (resizeWidth ?? shortestEdge ?? 0) }

    /// Preprocesses images into `[B, 3, outputHeight, outputWidth]` pixel values.
    public func pixelValues(_ images: [Image]) throws -> Tensor {
        let h = outputHeight, w = outputWidth
        var data: [Float] = []
        data.reserveCapacity(images.count * 3 * h * w)
        for image in images { data += try process(image) }
        return try Tensor(shape: [images.count, 3, h, w], data: data)
    }

    /// One image → `3 × H × W` floats, channel-major.
    public func process(_ image: Image) throws -> [Float] {
        guard image.width > 0, image.height > 0 else {
            throw ModelError("CLIP preprocessing: image is empty (\(image.width)×\(image.height))")
        }
        var img = rgb(image)
        if doResize {
            if let s = shortestEdge {
                img = img.resizedShortestSide(to: s, filter: .bicubic)
            } else if let rh = resizeHeight, let rw = resizeWidth {
                img = img.resized(width: rw, height: rh, filter: .bicubic)
            }
        }
        if doCenterCrop { img = centerCrop(img, height: cropHeight, width: cropWidth) }
        let plane = img.width * img.height
        var out = [Float](repeating: 0, count: 3 * plane)
        let scale = doRescale ? rescaleFactor : 1
        for c in 0..<3 {
            let mean = doNormalize ? imageMean[c] : 0
            let inv = doNormalize ? 1 / imageStd[c] : 1
            for i in 0..<plane {
                // rescale then normalise, in float32 as numpy does for these arrays.
                out[c * plane + i] = (Float(img.pixels[i * 3 + c]) * scale - mean) * inv
            }
        }
        return out
    }

    /// transformers' `convert_to_rgb`: grey is replicated; an alpha channel is composited onto
    /// white with Pillow's `alpha_composite` integer arithmetic (7 fraction bits, /255 by shifts),
    /// so results match Pillow exactly.
    func rgb(_ image: Image) -> Image {
        switch image.channels {
        case 3: return image
        case 1: return Image(width: image.width, height: image.height, channels: 3,
                             pixels: image.pixels.flatMap { [$0, $0, $0] })
        default:
            var px = [UInt8](repeating: 0, count: image.width * image.height * 3)
            for i in 0..<(image.width * image.height) {
                let a = UInt32(image.pixels[4 * i + 3])
                for c in 0..<3 {
                    let src = UInt32(image.pixels[4 * i + c])
                    if a == 0 { px[3 * i + c] = 255; continue }
                    // Over an opaque white background: coef1 = a·128, coef2 = (255 - a)·128.
                    let tmp = src * (a << 7) + 255 * ((255 - a) << 7) + (0x80 << 7)
                    px[3 * i + c] = UInt8(truncatingIfNeeded: ((((tmp >> 8) + tmp) >> 8)) >> 7)
                }
            }
            return Image(width: image.width, height: image.height, channels: 3, pixels: px)
        }
    }

    /// transformers' `center_crop`: top/left = `(size - crop) // 2`; a crop larger than the
    /// image is zero-padded around it first (centred the same way).
    func centerCrop(_ image: Image, height ch: Int, width cw: Int) -> Image {
        let top = floorDiv(image.height - ch, 2), left = floorDiv(image.width - cw, 2)
        var px = [UInt8](repeating: 0, count: ch * cw * 3)
        for y in 0..<ch {
            let sy = top + y
            guard sy >= 0, sy < image.height else { continue }
            for x in 0..<cw {
                let sx = left + x
                guard sx >= 0, sx < image.width else { continue }
                for c in 0..<3 { px[(y * cw + x) * 3 + c] = image.pixels[(sy * image.width + sx) * 3 + c] }
            }
        }
        return Image(width: cw, height: ch, channels: 3, pixels: px)
    }

    private func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
}
