import Foundation
import Imaging
import Workflow

/// `score` with pixel metrics: PSNR and SSIM (Gaussian window, Wang et al. 2004) between two image
/// columns. Images of different sizes are compared after resizing `b` to `a`'s size (bicubic), as is
/// usual when scoring a generated image against a ground truth of another resolution.
public enum PixelScore {
    public static let metrics = ["psnr", "ssim"]

    static func score(metric: String, a: Image, b: Image) throws -> Double {
        let a = a.converted(toChannels: 3)
        var b = b.converted(toChannels: 3)
        if a.width != b.width || a.height != b.height {
            b = b.resized(width: a.width, height: a.height, filter: .bicubic)
        }
        switch metric {
        case "psnr": return try PixelMetrics.psnr(a, b)
        case "ssim": return try PixelMetrics.ssim(a, b)
        default: throw StepError("unknown pixel metric \(metric)")
        }
    }
}

/// `score`: one number per item comparing two columns. Pixel metrics need no model; the CLIP metrics
/// (added with the CLIP model) name one with `model:`.
public enum ScoreStep {
    public static func kind(extraMetrics: [String] = [], makeModelScorer: (@Sendable (StepConfiguration) throws -> (any StepRunner)?)? = nil) -> StepKind {
        StepKind(
            name: "score", version: 1,
            summary: "Score two columns: psnr, ssim (pixels)\(extraMetrics.isEmpty ? "" : ", " + extraMetrics.joined(separator: ", ")).",
            scope: .panel,
            params: [ParamSpec("metric", .choice(PixelScore.metrics + extraMetrics), default: nil, doc: "the metric")]
                + (extraMetrics.isEmpty ? [] : [ParamSpec("clipscore", .bool, default: .bool(false),
                                                          doc: "clip-score only: ×100 and clipped at 0, as CLIPScore")]),
            inputs: [InputSpec("a", doc: "first column (e.g. the ground-truth image)"),
                     InputSpec("b", doc: "second column (e.g. a generated image)")],
            outputs: ["score"],
            modelKinds: extraMetrics.isEmpty ? [] : ["clip"],
            defaultBatchSize: 32, scopeSelectable: true, modelOptional: true, scoreOutputs: ["score"],
            makeRunner: { config in
                let metric = config.string("metric") ?? ""
                if PixelScore.metrics.contains(metric) { return PixelRunner(metric: metric) }
                guard let make = makeModelScorer, let runner = try make(config) else {
                    throw StepError("metric \(metric) is not available")
                }
                return runner
            })
    }

    struct PixelRunner: StepRunner {
        let metric: String
        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            items.map { item in
                do {
                    guard let a = item.inputs["a"]?.image, let b = item.inputs["b"]?.image else {
                        throw StepError("\(metric) compares two images; inputs a and b must be image columns")
                    }
                    let ia = try Image.load(contentsOf: context.imageURL(a))
                    let ib = try Image.load(contentsOf: context.imageURL(b))
                    return .success(["score": .number(try PixelScore.score(metric: metric, a: ia, b: ib))])
                } catch {
                    return .failure("\(error)")
                }
            }
        }
    }
}
