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

/// The training noise schedule shared by the schedulers: betas, `alphas_cumprod`, and the
/// timestep spacings, computed in float32 as diffusers does with torch.
public struct NoiseSchedule: Sendable {
    public var numTrainTimesteps: Int
    public var betas: [Float]
    /// `cumprod(1 − betas)`, float32, sequential like torch.
    public var alphasCumprod: [Float]
    public var prediction: PredictionType

    /// Builds the schedule from a config, with `defaultSchedule` for a missing `beta_schedule`
    /// (`linear` in every diffusers class).
    public init(_ c: SchedulerConfig, allowedPredictions: [PredictionType] = [.epsilon, .vPrediction]) throws {
        let n = c.numTrainTimesteps ?? 1000
        guard n >= 2 else { throw c.fail("num_train_timesteps", "must be at least 2, got \(n)") }
        numTrainTimesteps = n
        if let trained = c.trainedBetas {
            guard trained.count == n else {
                throw c.fail("trained_betas", "has \(trained.count) values but num_train_timesteps is \(n)")
            }
            betas = trained.map { Float($0) }
        } else {
            let start = c.betaStart ?? 0.0001, end = c.betaEnd ?? 0.02
            switch c.betaSchedule ?? "linear" {
            case "linear":
                betas = torchLinspace(Float(start), Float(end), n)
            case "scaled_linear":
                betas = torchLinspace(Float(start.squareRoot()), Float(end.squareRoot()), n).map { $0 * $0 }
            case "squaredcos_cap_v2":
                func alphaBar(_ t: Double) -> Double { let v = cos((t + 0.008) / 1.008 * Double.pi / 2); return v * v }
                betas = (0..<n).map { i in
                    Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), 0.999))
                }
            case let other:
                throw c.fail("beta_schedule", "'\(other)' is not supported (linear, scaled_linear, squaredcos_cap_v2)")
            }
        }
        var product: Float = 1
        alphasCumprod = betas.map { b in product *= (1 - b); return product }
        let p = c.predictionType ?? "epsilon"
        guard let kind = PredictionType(rawValue: p), allowedPredictions.contains(kind) else {
            throw c.fail("prediction_type", "'\(p)' is not supported (\(allowedPredictions.map(\.rawValue).joined(separator: ", ")))")
        }
        prediction = kind
    }

    /// `((1 − ᾱ) / ᾱ) ** 0.5` in float32, the Karras-style sigmas of every training step.
    public var trainSigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }
}

/// `torch.linspace(start, end, steps, dtype=float32)`: the first half from `start`, the second
/// from `end`, so both ends are exact.
func torchLinspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
    guard steps > 1 else { return [start] }
    let step = (end - start) / Float(steps - 1)
    let halfway = steps / 2
    return (0..<steps).map { i in i < halfway ? start + step * Float(i) : end - step * Float(steps - i - 1) }
}

/// `np.linspace(start, stop, num)` in float64 (the last value is `stop` exactly).
func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    guard num > 1 else { return num == 1 ? [start] : [] }
    let step = (stop - start) / Double(num - 1)
    var v = (0..<num).map { Double($0) * step + start }
    v[num - 1] = stop
    return v
}

/// `np.arange(start, stop, step)` for a negative float step, as the trailing spacing uses.
func numpyArangeDown(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
    let count = Int(((stop - start) / step).rounded(.up))
    return (0..<max(count, 0)).map { start + Double($0) * step }
}

/// `np.interp(x, arange(len(ys)), ys)` in float64.
func numpyInterp(_ x: Double, _ ys: [Float]) -> Double {
    if x <= 0 { return Double(ys[0]) }
    let last = ys.count - 1
    if x >= Double(last) { return Double(ys[last]) }
    let i = Int(x.rounded(.down))
    let f = x - Double(i)
    let a = Double(ys[i]), b = Double(ys[i + 1])
    // numpy: slope·(x − xp[i]) + fp[i]
    return (b - a) * f + a
}

/// The integer timestep spacings of DDIM/PNDM (`leading`, `trailing`, `linspace`), descending.
func spacedTimesteps(spacing: String, steps: Int, trainSteps: Int, offset: Int, config c: SchedulerConfig) throws -> [Int] {
    switch spacing {
    case "linspace":
        return numpyLinspace(0, Double(trainSteps - 1), steps).map { Int($0.rounded(.toNearestOrEven)) }.reversed()
    case "leading":
        let ratio = trainSteps / steps
        return (0..<steps).map { $0 * ratio + offset }.reversed()
    case "trailing":
        let ratio = Double(trainSteps) / Double(steps)
        return numpyArangeDown(Double(trainSteps), 0, -ratio).map { Int($0.rounded(.toNearestOrEven)) - 1 }
    default:
        throw c.fail("timestep_spacing", "'\(spacing)' is not supported (leading, trailing, linspace)")
    }
}

/// A denoising scheduler: the timesteps to visit and the update from one model output.
///
/// Use: `timesteps` gives the UNet's timestep for step `i`; scale the latents with
/// `scaleModelInput(_:step:)`, run the UNet, then `step(modelOutput:step:sample:)` returns the
/// next latents. Steps must be taken in order from 0 (multistep methods keep history).
public protocol DiffusionScheduler: Sendable {
    /// The UNet timestep of each inference step (integral except for Euler with linspace spacing).
    var timesteps: [Float] { get }
    /// The scale of the initial noise (`init_noise_sigma`).
    var initNoiseSigma: Float { get }
    /// The model input for step `i` (Euler divides by `sqrt(σ² + 1)`; the others return it as is).
    func scaleModelInput(_ sample: Tensor, step i: Int) -> Tensor
    /// The latents after step `i`.
    mutating func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> Tensor
}

/// The scheduler names the `generate` step and `StableDiffusionPipeline` accept.
public enum SchedulerKind: String, Sendable, CaseIterable {
    case ddim, pndm, euler
    case dpmSolverMultistep = "dpm++2m"

    /// A scheduler of this kind from a config, set to `steps` inference steps.
    public func make(config: SchedulerConfig, steps: Int) throws -> any DiffusionScheduler {
        guard steps >= 1 else { throw SchedulerConfigError(file: config.source, field: "steps", "must be at least 1, got \(steps)") }
        switch self {
        case .ddim: return try DDIMScheduler(config: config, steps: steps)
        case .pndm: return try PNDMScheduler(config: config, steps: steps)
        case .euler: return try EulerDiscreteScheduler(config: config, steps: steps)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: config, steps: steps)
        }
    }
}

/// Element-wise `Σ coefficient·tensor` over same-shaped tensors (scheduler updates).
func combine(_ terms: [(Float, Tensor)]) -> Tensor {
    var out = Tensor(zeros: terms[0].1.shape)
    let n = out.count
    out.data.withUnsafeMutableBufferPointer { o in
        for (k, (c, t)) in terms.enumerated() {
            t.data.withUnsafeBufferPointer { x in
                if k == 0 { for i in 0..<n { o[i] = c * x[i] } } else { for i in 0..<n { o[i] += c * x[i] } }
            }
        }
    }
    return out
}

func checkSameShape(_ a: Tensor, _ b: Tensor, _ what: String) throws {
    guard a.shape == b.shape else { throw TensorError("\(what): model output \(a.shape) and sample \(b.shape) differ") }
}
