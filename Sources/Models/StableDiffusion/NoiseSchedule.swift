import Foundation
import Tensor

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
