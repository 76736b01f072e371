import Foundation
import Tensor

/// A scheduler config the code cannot use: the file and the field are named.
public struct SchedulerConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var field: String
    public var message: String
    public init(file: String, field: String, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }
    public var description: String { "\(file): \(field): \(message)" }
}

/// The keys of a diffusers `scheduler_config.json` that the schedulers here read.
///
/// Every key is optional: a missing key takes the default of the scheduler class that reads it
/// (as `SchedulerClass.from_config` does), so the same file can drive DDIM, PNDM, Euler or
/// DPM-Solver++ — e.g. SD v1.5's PNDM config gives DDIM `clip_sample: false` but DDIM's own
/// default `set_alpha_to_one: true` only where the key is absent.
public struct SchedulerConfig: Sendable, Equatable {
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

    /// Reads `scheduler_config.json`.
    public init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SchedulerConfigError(file: url.path, field: "(file)", "cannot read: \(error.localizedDescription)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SchedulerConfigError(file: url.path, field: "(file)", "is not a JSON object")
        }
        try self.init(object: object, source: url.path)
    }

    /// Reads the keys of a parsed config object.
    public init(object o: [String: Any], source: String) throws {
        self.source = source
        func int(_ k: String) throws -> Int? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, Double(truncating: n) == Double(n.intValue) else {
                throw SchedulerConfigError(file: source, field: k, "expected an integer, got \(v)")
            }
            return n.intValue
        }
        func double(_ k: String) throws -> Double? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber else { throw SchedulerConfigError(file: source, field: k, "expected a number, got \(v)") }
            return n.doubleValue
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let b = v as? Bool else { throw SchedulerConfigError(file: source, field: k, "expected true or false, got \(v)") }
            return b
        }
        func string(_ k: String) throws -> String? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw SchedulerConfigError(file: source, field: k, "expected a string, got \(v)") }
            return s
        }
        className = try string("_class_name")
        numTrainTimesteps = try int("num_train_timesteps")
        betaStart = try double("beta_start")
        betaEnd = try double("beta_end")
        betaSchedule = try string("beta_schedule")
        if let v = o["trained_betas"], !(v is NSNull) {
            guard let list = v as? [NSNumber] else {
                throw SchedulerConfigError(file: source, field: "trained_betas", "expected a list of numbers")
            }
            trainedBetas = list.map(\.doubleValue)
        }
        predictionType = try string("prediction_type")
        timestepSpacing = try string("timestep_spacing")
        stepsOffset = try int("steps_offset")
        clipSample = try bool("clip_sample")
        clipSampleRange = try double("clip_sample_range")
        setAlphaToOne = try bool("set_alpha_to_one")
        skipPrkSteps = try bool("skip_prk_steps")
        thresholding = try bool("thresholding")
        rescaleBetasZeroSNR = try bool("rescale_betas_zero_snr")
        interpolationType = try string("interpolation_type")
        useKarrasSigmas = try bool("use_karras_sigmas")
        finalSigmasType = try string("final_sigmas_type")
        timestepType = try string("timestep_type")
        solverOrder = try int("solver_order")
        algorithmType = try string("algorithm_type")
        solverType = try string("solver_type")
        lowerOrderFinal = try bool("lower_order_final")
        eulerAtFinal = try bool("euler_at_final")
        lambdaMinClipped = try double("lambda_min_clipped")
        varianceType = try string("variance_type")
    }

    func fail(_ field: String, _ message: String) -> SchedulerConfigError {
        SchedulerConfigError(file: source, field: field, message)
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
