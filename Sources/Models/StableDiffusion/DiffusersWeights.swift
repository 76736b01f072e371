import Foundation
import Tensor

/// The weights file of one diffusers component folder (`unet/`, `vae/`).
///
/// Prefers `diffusion_pytorch_model.safetensors`, then the `.fp16.safetensors` variant;
/// PyTorch `.bin` files are refused with a hint.
func diffusersWeights(in folder: URL) throws -> Checkpoint {
    let fm = FileManager.default
    for name in ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors", "model.safetensors",
                 "model.fp16.safetensors"] {
        let url = folder.appendingPathComponent(name)
        if fm.fileExists(atPath: url.path) { return try Checkpoint(url: url) }
    }
    if fm.fileExists(atPath: folder.appendingPathComponent("diffusion_pytorch_model.bin").path) {
        throw ModelError(file: folder.path, "only diffusion_pytorch_model.bin found: PyTorch pickles are not read; download the .safetensors files")
    }
    throw ModelError(file: folder.path, "no diffusion_pytorch_model.safetensors (or .fp16.safetensors) in the folder")
}

/// Where the SD models' weights come from: a checkpoint (`CheckpointReader`), or random
/// values for benchmarks (`RandomWeightSource`), by diffusers tensor name.
public protocol WeightSource: AnyObject {
    /// The tensor `name`, which must have `shape` (and, from a checkpoint, finite values).
    func weight(_ name: String, _ shape: [Int]) throws -> Tensor
    /// A weight matrix or convolution kernel `name` (exactly `shape`), in the source's storage:
    /// a checkpoint's F16/BF16 kept as stored under its reader's `.stored` precision.
    func matrix(_ name: String, _ shape: [Int]) throws -> Weight
    /// Whether the source has `name`.
    func has(_ name: String) -> Bool
    /// The stored shape of `name`, if present.
    func shape(of name: String) -> [Int]?
}

extension WeightSource {
    /// Sources without a stored precision hand out float32 matrices.
    public func matrix(_ name: String, _ shape: [Int]) throws -> Weight { Weight(try weight(name, shape)) }
}

extension CheckpointReader: WeightSource {
    /// As `weight(_:_:)`, kept in the checkpoint's storage (`takeWeight`), with the same finiteness check.
    public func matrix(_ name: String, _ shape: [Int]) throws -> Weight {
        let w = try takeWeight(name, shape: shape)
        let bad = w.nonFiniteCount
        if bad > 0 {
            let file = checkpoint.info(prefix + name)?.url.path ?? checkpoint.location.path
            throw TensorError(file: URL(fileURLWithPath: file), tensor: prefix + name,
                                   "has \(bad) NaN/infinite value(s) — an fp16 export that overflowed? Use the fp32 weights")
        }
        return w
    }

    /// Reads a tensor that must have `shape` and finite values (fp16 checkpoints that overflowed
    /// hold inf/NaN, which would silently turn every image black).
    public func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
        let t = try take(name, shape: shape)
        var bad = 0
        t.data.withUnsafeBufferPointer { p in for v in p where !v.isFinite { bad += 1 } }
        if bad > 0 {
            let file = checkpoint.info(prefix + name)?.url.path ?? checkpoint.location.path
            throw TensorError(file: URL(fileURLWithPath: file), tensor: prefix + name,
                                   "has \(bad) NaN/infinite value(s) — an fp16 export that overflowed? Use the fp32 weights")
        }
        return t
    }

    public func has(_ name: String) -> Bool { checkpoint.contains(prefix + name) }

    public func shape(of name: String) -> [Int]? { checkpoint.info(prefix + name)?.shape }
}

/// Deterministic random weights of whatever shapes a model asks for, recorded by name so they
/// can be written out for the PyTorch side of a benchmark: matrices and kernels uniform with
/// std `1/sqrt(fan_in)`, norm scales near 1, biases near 0.
public final class RandomWeightSource: WeightSource, @unchecked Sendable {
    /// Every tensor handed out, by name.
    public private(set) var recorded: [String: Tensor] = [:]
    private var state: UInt64

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    public func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        let isNormScale = shape.count == 1 && name.hasSuffix(".weight")
        let bound: Float
        if shape.count >= 2 {
            let fanIn = shape.dropFirst().reduce(1, *)
            bound = (3 / Float(fanIn)).squareRoot()
        } else {
            bound = 0.02
        }
        var s = state
        values.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                // xorshift64*: fast, and good enough for benchmark weights.
                s ^= s >> 12; s ^= s << 25; s ^= s >> 27
                let u = Float((s &* 2_685_821_657_736_338_717) >> 40) * (1.0 / 16_777_216.0)
                p[i] = (2 * u - 1) * bound + (isNormScale ? 1 : 0)
            }
        }
        state = s
        let t = try Tensor(shape: shape, data: values)
        recorded[name] = t
        return t
    }

    public func has(_ name: String) -> Bool { false }

    public func shape(of name: String) -> [Int]? { nil }
}
