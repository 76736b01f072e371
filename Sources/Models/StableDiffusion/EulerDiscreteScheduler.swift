import Foundation
import Tensor

/// Euler (Karras et al. 2022, Algorithm 2 without churn), matching diffusers'
/// `EulerDiscreteScheduler` (0.17 – 0.42) with its defaults `s_churn = 0`.
///
/// Supported: `prediction_type` epsilon and v_prediction; `timestep_spacing` linspace
/// (default — fractional timesteps), leading, trailing; `interpolation_type` linear;
/// `final_sigmas_type` zero (default) or sigma_min; `steps_offset`. Not supported: Karras /
/// exponential / beta sigmas, `interpolation_type: log_linear`, continuous timesteps, churn
/// (stochastic Euler), zero-terminal-SNR rescaling.
///
/// Unlike the DDIM family its initial noise is scaled by `init_noise_sigma` (σ_max, or
/// `sqrt(σ_max² + 1)` for leading spacing) and each model input by `1/sqrt(σ² + 1)`.
public struct EulerDiscreteScheduler: DiffusionScheduler {
    public let schedule: NoiseSchedule
    public let timesteps: [Float]
    /// σ of each step plus the final σ, float32.
    public let sigmas: [Float]
    public let initNoiseSigma: Float

    public init(config c: SchedulerConfig, steps: Int) throws {
        try c.rejectUnsupported(scheduler: "Euler")
        if let i = c.interpolationType, i != "linear" { throw c.fail("interpolation_type", "'\(i)' is not supported (linear)") }
        if let t = c.timestepType, t != "discrete" { throw c.fail("timestep_type", "'\(t)' is not supported (discrete)") }
        schedule = try NoiseSchedule(c)
        let n = schedule.numTrainTimesteps
        let spacing = c.timestepSpacing ?? "linspace"
        var ts: [Double]
        switch spacing {
        case "linspace":
            ts = numpyLinspace(0, Double(n - 1), steps).map { Double(Float($0)) }.reversed()
        case "leading":
            let ratio = n / steps
            ts = (0..<steps).reversed().map { Double($0 * ratio) + Double(c.stepsOffset ?? 0) }
        case "trailing":
            let ratio = Double(n) / Double(steps)
            ts = numpyArangeDown(Double(n), 0, -ratio).map { $0.rounded(.toNearestOrEven) - 1 }
        default:
            throw c.fail("timestep_spacing", "'\(spacing)' is not supported (linspace, leading, trailing)")
        }
        let train = schedule.trainSigmas
        var s = ts.map { Float(numpyInterp($0, train)) }
        switch c.finalSigmasType ?? "zero" {
        case "zero": s.append(0)
        case "sigma_min": s.append(train[0])
        case let other: throw c.fail("final_sigmas_type", "'\(other)' is not supported (zero, sigma_min)")
        }
        sigmas = s
        timesteps = ts.map { Float($0) }
        let maxSigma = s.max() ?? 1
        initNoiseSigma = (spacing == "linspace" || spacing == "trailing") ? maxSigma : (maxSigma * maxSigma + 1).squareRoot()
    }

    public func scaleModelInput(_ sample: Tensor, step i: Int) -> Tensor {
        let sigma = sigmas[i]
        let d = (sigma * sigma + 1).squareRoot()
        var out = sample
        out.data.withUnsafeMutableBufferPointer { o in for k in 0..<o.count { o[k] /= d } }
        return out
    }

    public mutating func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> Tensor {
        try checkSameShape(modelOutput, sample, "Euler step")
        let sigma = sigmas[i]
        let dt = sigmas[i + 1] - sigma
        let v = schedule.prediction == .vPrediction
        let vScale = -sigma / (sigma * sigma + 1).squareRoot(), vDen = sigma * sigma + 1
        var out = sample
        out.data.withUnsafeMutableBufferPointer { o in
            modelOutput.data.withUnsafeBufferPointer { m in
                sample.data.withUnsafeBufferPointer { s in
                    for k in 0..<o.count {
                        let x0 = v ? m[k] * vScale + s[k] / vDen : s[k] - sigma * m[k]
                        let derivative = (s[k] - x0) / sigma
                        o[k] = s[k] + derivative * dt
                    }
                }
            }
        }
        return out
    }
}
