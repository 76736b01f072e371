import Foundation
import Imaging
import Workflow

/// `score` with pixel metrics: PSNR and SSIM (Gaussian window, Wang et al. 2004) between two image
/// columns. Images of different sizes are compared after resizing `b` to `a`'s size (bicubic), as is
/// usual when scoring a generated image against a ground truth of another resolution.
enum PixelScore {
    static func score(metric: ScoreStep.Metric, a: Image, b: Image) throws -> Double {
        let a = a.converted(toChannels: 3)
        var b = b.converted(toChannels: 3)
        if a.width != b.width || a.height != b.height {
            b = b.resized(width: a.width, height: a.height, filter: .bicubic)
        }
        switch metric {
        case .psnr: return try PixelMetrics.psnr(a, b)
        case .ssim: return try PixelMetrics.ssim(a, b)
        default: throw StepError("\(metric.rawValue) is not a pixel metric")
        }
    }
}

/// `score`: one number per item comparing two columns. Pixel metrics need no model; the CLIP metrics
/// name one with `model:`.
public enum ScoreStep {
    public enum Metric: String, ParamChoice {
        case psnr, ssim
        case clipImageSimilarity = "clip-image-similarity"
        case clipScore = "clip-score"

        var isPixelMetric: Bool { self == .psnr || self == .ssim }
    }

    public struct Params: StepParams {
        @Param(help: "the metric", required: true) public var metric = Metric.psnr
        @Param(help: "clip-score only: ×100 and clipped at 0, as CLIPScore") public var clipscore = false
        public init() {}
    }

    public static let kind = StepKind(
        name: "score", version: 1,
        summary: "Score two columns: psnr, ssim (pixels), clip-image-similarity, clip-score.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("a", doc: "first column (e.g. the ground-truth image)"),
                 InputSpec("b", doc: "second column (e.g. a generated image)")],
        outputs: ["score"],
        modelKinds: ["clip"],
        defaultBatchSize: 32, scopeSelectable: true, modelOptional: true, scoreOutputs: ["score"],
        makeRunner: { params, config in
            if params.metric.isPixelMetric { return PixelRunner(metric: params.metric) }
            return CLIPScorer.Runner(model: try SharedModels.clip.get(config.model), metric: params.metric,
                                     clipscore: params.clipscore)
        })

    struct PixelRunner: StepRunner {
        let metric: ScoreStep.Metric
        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            items.map { item in
                do {
                    guard let a = item.inputs["a"]?.image, let b = item.inputs["b"]?.image else {
                        throw StepError("\(metric) compares two images; inputs a and b must be image columns")
                    }
                    let ia = try services.loadImage(a)
                    let ib = try services.loadImage(b)
                    return .success(["score": .number(try PixelScore.score(metric: metric, a: ia, b: ib))])
                } catch {
                    return .failure("\(error)")
                }
            }
        }
    }
}
