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
        params: [
            ParamSpec("width", .int(min: 1, max: 8192), default: .number(128), doc: "output width in pixels"),
            ParamSpec("height", .int(min: 1, max: 8192), default: .number(128), doc: "output height in pixels"),
            ParamSpec("filter", .choice(ResampleFilter.allNames), default: .string("bicubic"), doc: "resampling filter"),
            ParamSpec("mode", .choice(["stretch", "cover", "contain"]), default: .string("stretch"),
                      doc: "stretch to the size, cover (shortest side + center crop) or contain (fit inside)"),
        ],
        inputs: [InputSpec("image", doc: "the image to resize")],
        outputs: ["image"],
        defaultBatchSize: 32, scopeSelectable: true,
        makeRunner: { config in try Runner(config: config) })

    struct Runner: StepRunner {
        let width: Int, height: Int, filter: ResampleFilter, mode: String

        init(config: StepConfiguration) throws {
            width = config.int("width") ?? 128
            height = config.int("height") ?? 128
            guard let f = ResampleFilter(rawValue: config.string("filter") ?? "bicubic") else {
                throw StepError("unknown filter \(config.string("filter") ?? "")")
            }
            filter = f
            mode = config.string("mode") ?? "stretch"
        }

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            items.map { item in
                if context.isCancelled() { return .failure("cancelled") }
                do {
                    guard let ref = item.inputs["image"]?.image else { throw StepError("input image is not an image") }
                    let image = try Image.load(contentsOf: context.imageURL(ref))
                    let out = resize(image)
                    let hash = try context.media.put(try PNGCodec.encode(out), ext: "png")
                    return .success(["image": .image(ImageRef(hash: hash, ext: "png"))])
                } catch {
                    return .failure("\(error)")
                }
            }
        }

        func resize(_ image: Image) -> Image {
            switch mode {
            case "cover":
                let scale = max(Double(width) / Double(image.width), Double(height) / Double(image.height))
                let w = max(width, Int((Double(image.width) * scale).rounded()))
                let h = max(height, Int((Double(image.height) * scale).rounded()))
                return image.resized(width: w, height: h, filter: filter).centerCropped(width: width, height: height)
            case "contain":
                let scale = min(Double(width) / Double(image.width), Double(height) / Double(image.height))
                let w = max(1, Int((Double(image.width) * scale).rounded()))
                let h = max(1, Int((Double(image.height) * scale).rounded()))
                return image.resized(width: w, height: h, filter: filter)
            default:
                return image.resized(width: width, height: height, filter: filter)
            }
        }
    }
}

extension ResampleFilter {
    static var allNames: [String] { ["nearest", "bilinear", "bicubic", "lanczos"] }
}
