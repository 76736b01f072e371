import Foundation
import Imaging
import Stories
import Workflow

/// `thumbnail`: resizes each image with Pillow-exact filters (the same resampler CLIP preprocessing uses).
///
/// Modes: `stretch` resizes to exactly width×height; `cover` resizes the shortest side and center-crops
/// (as CLIPImageProcessor does); `contain` fits inside width×height keeping the aspect ratio.
public enum ThumbnailStep {
    public static let kind = StepKind(
        name: "thumbnail", version: 1,
        summary: "Resize images with Pillow-compatible filters (nearest, bilinear, bicubic, lanczos; antialiased).",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("image", doc: "the image to resize")],
        outputs: ["image"],
        defaultBatchSize: 32, scopeSelectable: true,
        makeRunner: { params, _ in Runner(params: params) })

    public enum Mode: String, ParamChoice {
        case stretch, cover, contain
    }

    public struct Params: StepParams {
        @Param(help: "output width in pixels", min: 1, max: 8192) public var width = 128
        @Param(help: "output height in pixels", min: 1, max: 8192) public var height = 128
        @Param(help: "resampling filter") public var filter = ResampleFilter.bicubic
        @Param(help: "stretch to the size, cover (shortest side + center crop) or contain (fit inside)")
        public var mode = Mode.stretch
        public init() {}
    }

    struct Runner: StepRunner {
        let params: Params

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            items.map { item in
                if services.isCancelled() { return .failure("cancelled") }
                do {
                    guard let ref = item.inputs["image"]?.image else { throw StepError("input image is not an image") }
                    let image = try services.loadImage(ref)
                    let out = resize(image)
                    let hash = try services.media.put(try PNGCodec.encode(out), ext: "png")
                    return .success(["image": .image(ImageRef(hash: hash, ext: "png"))])
                } catch {
                    return .failure("\(error)")
                }
            }
        }

        func resize(_ image: Image) -> Image {
            let (width, height, filter) = (params.width, params.height, params.filter)
            switch params.mode {
            case .cover:
                let scale = max(Double(width) / Double(image.width), Double(height) / Double(image.height))
                let w = max(width, Int((Double(image.width) * scale).rounded()))
                let h = max(height, Int((Double(image.height) * scale).rounded()))
                return image.resized(width: w, height: h, filter: filter).centerCropped(width: width, height: height)
            case .contain:
                let scale = min(Double(width) / Double(image.width), Double(height) / Double(image.height))
                let w = max(1, Int((Double(image.width) * scale).rounded()))
                let h = max(1, Int((Double(image.height) * scale).rounded()))
                return image.resized(width: w, height: h, filter: filter)
            case .stretch:
                return image.resized(width: width, height: height, filter: filter)
            }
        }
    }
}

extension ResampleFilter: ParamChoice {}
