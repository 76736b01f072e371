import Foundation
import Tensor

/// The keys of a diffusers `scheduler_config.json` that the schedulers here read.
///
/// Every key is optional: a missing key takes the default of the scheduler class that reads it
/// (as `SchedulerClass.from_config` does), so the same file can drive DDIM, PNDM, Euler or
/// DPM-Solver++ — e.g. SD v1.5's PNDM config gives DDIM `clip_sample: false` but DDIM's own
/// default `set_alpha_to_one: true` only where the key is absent.
public struct SchedulerConfig: Decodable, Sendable, Equatable {
    /// Where the values came from, for messages.
    public var source: String = "scheduler_config.json"
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var predictionType: String?
    public var timestepSpacing: String?
    public var stepsOffset: Int?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var setAlphaToOne: Bool?
    public var skipPrkSteps: Bool?
    public var thresholding: Bool?
    public var rescaleBetasZeroSNR: Bool?
    public var interpolationType: String?
    public var useKarrasSigmas: Bool?
    public var finalSigmasType: String?
    public var timestepType: String?
    public var solverOrder: Int?
    public var algorithmType: String?
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var lambdaMinClipped: Double?
    public var varianceType: String?

    /// All defaults (each scheduler applies its own).
    public init() {}

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start"
        case betaEnd = "beta_end", betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case predictionType = "prediction_type", timestepSpacing = "timestep_spacing", stepsOffset = "steps_offset"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case skipPrkSteps = "skip_prk_steps", thresholding, rescaleBetasZeroSNR = "rescale_betas_zero_snr"
        case interpolationType = "interpolation_type", useKarrasSigmas = "use_karras_sigmas"
        case finalSigmasType = "final_sigmas_type", timestepType = "timestep_type", solverOrder = "solver_order"
        case algorithmType = "algorithm_type", solverType = "solver_type", lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final", lambdaMinClipped = "lambda_min_clipped", varianceType = "variance_type"
    }

    /// Reads `scheduler_config.json`.
    public init(url: URL) throws {
        self = try ConfigFile.read(SchedulerConfig.self, from: url)
        source = url.path
    }

    /// Reads the keys of a parsed config object (`source` names it in messages).
    public init(object: [String: Any], source: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        self = try ConfigFile.decode(SchedulerConfig.self, from: data, source: source)
        self.source = source
    }

    func fail(_ field: String, _ message: String) -> ModelError {
        ModelError(file: source, field: field, message)
    }

    /// Throws when a feature the schedulers here do not implement is switched on.
    func rejectUnsupported(scheduler: String) throws {
        if thresholding == true { throw fail("thresholding", "dynamic thresholding is not supported by \(scheduler)") }
        if rescaleBetasZeroSNR == true { throw fail("rescale_betas_zero_snr", "zero-terminal-SNR rescaling is not supported") }
        if useKarrasSigmas == true { throw fail("use_karras_sigmas", "Karras sigmas are not supported") }
        if let v = varianceType { throw fail("variance_type", "learned variance ('\(v)') is not supported") }
    }
}

/// What the model predicts (`prediction_type`).
public enum PredictionType: String, Sendable {
    case epsilon
    case vPrediction = "v_prediction"
}
