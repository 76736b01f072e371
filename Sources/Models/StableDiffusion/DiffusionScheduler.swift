import Foundation
import Tensor

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
        guard steps >= 1 else { throw ModelError(file: config.source, field: "steps", "must be at least 1, got \(steps)") }
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
