import Foundation
import Imaging
import Tensor

/// CLIP image preprocessing as transformers' `CLIPImageProcessor` (PIL backend) does it,
/// configured by `preprocessor_config.json`:
/// convert to RGB (alpha composited onto white) → resize the shortest side with PIL's bicubic filter (`Imaging`'s PIL-exact
/// resampler) → center crop (offsets `(size - crop) // 2`, zero padding when the crop is
/// larger) → rescale (`× rescale_factor`) → normalise with `image_mean` / `image_std`.
public struct CLIPImageProcessor: Sendable, Equatable {
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
        self.init()
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
                throw CLIPConfigError(file: url, "is not a JSON object")
            }
            object = o
        } catch let e as CLIPConfigError { throw e } catch {
            throw CLIPConfigError(file: url, "cannot read as JSON: \(error.localizedDescription)")
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = object[key], !(v is NSNull) else { return nil }
            guard let b = v as? Bool else { throw CLIPConfigError(file: url, "key '\(key)': expected true or false") }
            return b
        }
        func number(_ key: String, in dict: [String: Any]? = nil) throws -> Double? {
            guard let v = (dict ?? object)[key], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber else { throw CLIPConfigError(file: url, "key '\(key)': expected a number") }
            return n.doubleValue
        }
        func int(_ key: String, in dict: [String: Any]? = nil) throws -> Int? {
            guard let d = try number(key, in: dict) else { return nil }
            guard d == d.rounded(), d > 0 else { throw CLIPConfigError(file: url, "key '\(key)': expected a positive integer, got \(d)") }
            return Int(d)
        }
        func triple(_ key: String) throws -> [Float]? {
            guard let v = object[key], !(v is NSNull) else { return nil }
            if let n = v as? NSNumber { return [Float](repeating: n.floatValue, count: 3) }
            guard let a = v as? [NSNumber], a.count == 3 else { throw CLIPConfigError(file: url, "key '\(key)': expected 3 numbers") }
            return a.map(\.floatValue)
        }
        doConvertRGB = try bool("do_convert_rgb") ?? doConvertRGB
        doResize = try bool("do_resize") ?? doResize
        doCenterCrop = try bool("do_center_crop") ?? doCenterCrop
        doRescale = try bool("do_rescale") ?? doRescale
        doNormalize = try bool("do_normalize") ?? doNormalize
        resample = try number("resample").map { Int($0) } ?? resample
        rescaleFactor = try number("rescale_factor").map { Float($0) } ?? rescaleFactor
        imageMean = try triple("image_mean") ?? imageMean
        imageStd = try triple("image_std") ?? imageStd
        switch object["size"] {
        case let n as NSNumber where !(object["size"] is Bool):
            shortestEdge = Int(n.intValue)
        case let d as [String: Any]:
            if let s = try int("shortest_edge", in: d) {
                shortestEdge = s
            } else if let h = try int("height", in: d), let w = try int("width", in: d) {
                shortestEdge = nil
                resizeHeight = h
                resizeWidth = w
            } else {
                throw CLIPConfigError(file: url, "key 'size': expected 'shortest_edge' or 'height' and 'width'")
            }
        case nil, is NSNull: break
        default: throw CLIPConfigError(file: url, "key 'size': expected a number or an object")
        }
        switch object["crop_size"] {
        case let n as NSNumber:
            cropHeight = n.intValue
            cropWidth = n.intValue
        case let d as [String: Any]:
            guard let h = try int("height", in: d), let w = try int("width", in: d) else {
                throw CLIPConfigError(file: url, "key 'crop_size': expected 'height' and 'width'")
            }
            cropHeight = h
            cropWidth = w
        case nil, is NSNull: break
        default: throw CLIPConfigError(file: url, "key 'crop_size': expected a number or an object")
        }
        guard resample == 3 else {
            throw CLIPConfigError(file: url, "key 'resample': only 3 (bicubic) is supported, got \(resample)")
        }
        guard imageStd.allSatisfy({ $0 != 0 }) else { throw CLIPConfigError(file: url, "key 'image_std': values must be non-zero") }
        guard doCenterCrop || (resizeHeight != nil && resizeWidth != nil) else {
            throw CLIPConfigError(file: url, "without do_center_crop the output size depends on the image; set a square 'size' or enable cropping")
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
            throw CLIPUsageError("CLIP preprocessing: image is empty (\(image.width)×\(image.height))")
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
