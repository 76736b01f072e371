import Foundation
import Testing
@testable import Tensor

/// Half-precision weights: products on f16/bf16 storage equal the float32 products of the same
/// (widened) values, within float32 summation-order error.
///
/// Tolerance: |half − f32| ≤ 1e-5 · Σ|x·w| per output (both sides sum the same exact products in
/// float32, only in a different order; 1e-5 is ~80 ulps of the magnitude sum, far below the
/// 4e-3 / 8e-3 relative rounding that storing in f16 / bf16 itself causes).
@Suite("half-precision weights")
struct WeightTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var g = seed
        return (0..<n).map { _ in
            g = g &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: g >> 11) % 2001 - 1000) / 1000
        }
    }

    static func halfWeight(_ shape: [Int], _ dtype: Weight.DType, seed: UInt64) -> Weight {
        Weight(try! Tensor(shape: shape, data: values(shape.reduce(1, *), seed: seed))).converted(to: dtype)
    }

    /// Max over outputs of |a − b| / (Σ|x·w| + tiny), for `x · wᵀ` with `[rows, k]` x.
    static func relativeError(_ a: Tensor, _ b: Tensor, x: Tensor, w: Tensor) -> Float {
        let k = x.lastDimension, o = w.shape[0]
        var worst: Float = 0
        for r in 0..<x.rowCount {
            for j in 0..<o {
                var mag: Float = 1e-30
                for i in 0..<k { mag += abs(x.data[r * k + i] * w.data[j * k + i]) }
                worst = max(worst, abs(a.data[r * o + j] - b.data[r * o + j]) / mag)
            }
        }
        return worst
    }

    @Test("linear on f16/bf16 equals linear on the widened float32 weight (decode row, prefill rows, many tiles, transposed)",
          arguments: [Weight.DType.f16, .bf16])
    func linearMatchesFloat32(dtype: Weight.DType) throws {
        // (rows, out, in): one row takes the half GEMV; the last shape spans several widened tiles
        // (in · out > halfTileFloats; 3001 × 500 needs 3, split into 4 uneven-sized ones on 2 workers)
        // and odd sizes exercise the vector loops' tails. In ≥ 1,024 takes the transposed product
        // (`transposedProductPays`): one tile, and 1,030 × 1,031 over two tiles on 2 workers.
        for (rows, o, k) in [(1, 37, 45), (1, 130, 301), (3, 37, 45), (7, 1100, 600), (1, 1100, 600), (5, 3001, 500),
                             (9, 70, 1024), (33, 1030, 1031)] {
            let w = Self.halfWeight([o, k], dtype, seed: UInt64(o * k))
            let wide = w.float32()
            let x = try Tensor(shape: [rows, k], data: Self.values(rows * k, seed: 3))
            let bias = try Tensor(shape: [o], data: Self.values(o, seed: 5))
            for b in [bias, nil] {
                let half = try linear(x, weight: w, bias: b)
                let reference = try linear(x, weight: wide, bias: b)
                #expect(half.shape == [rows, o])
                let err = Self.relativeError(half, reference, x: x, w: wide)
                #expect(err <= 1e-5, "\(dtype) rows \(rows) out \(o) in \(k) bias \(b != nil): relative error \(err)")
            }
        }
    }

    @Test("conv2d with an f16/bf16 kernel equals conv2d with the widened kernel", arguments: [Weight.DType.f16, .bf16])
    func convMatchesFloat32(dtype: Weight.DType) throws {
        let x = try Tensor(shape: [2, 5, 9, 8], data: Self.values(2 * 5 * 9 * 8, seed: 9))
        let bias = try Tensor(shape: [6], data: Self.values(6, seed: 4))
        for (kernel, stride) in [(3, 1), (3, 2), (1, 1)] {
            let w = Self.halfWeight([6, 5, kernel, kernel], dtype, seed: UInt64(kernel))
            let half = try conv2d(x, weight: w, bias: bias, stride: stride, padding: .uniform(kernel / 2))
            let reference = try conv2d(x, weight: w.float32(), bias: bias, stride: stride, padding: .uniform(kernel / 2))
            #expect(half.shape == reference.shape)
            let worst = zip(half.data, reference.data).map { abs($0 - $1) }.max() ?? 0
            // Each output sums ≤ 45 products of magnitude ≤ 1: 1e-5 · 45 bounds the order difference.
            #expect(worst <= 4.5e-4, "\(dtype) kernel \(kernel) stride \(stride): max |diff| \(worst)")
        }
    }

    @Test("widening is exact: every f16 and bf16 bit pattern through the kernels equals the scalar conversion")
    func wideningExact() throws {
        let all = (0...UInt16.max).map { $0 }
        for dtype in [Weight.DType.f16, .bf16] {
            let w = try Weight(shape: [256, 256], bits: all, dtype: dtype)
            let wide = w.float32().data
            for (b, v) in zip(all, wide) {
                let expected = dtype == .f16 ? floatFromHalfBits(b) : floatFromBFloat16Bits(b)
                #expect(v.bitPattern == expected.bitPattern || (v.isNaN && expected.isNaN),
                        "\(dtype) bits \(String(b, radix: 16)): \(v) vs \(expected)")
                if v.bitPattern != expected.bitPattern && !(v.isNaN && expected.isNaN) { return }
            }
        }
    }

    @Test("gatherRows, concatenatingRows and reshaped keep the stored values")
    func rowOperations() throws {
        let a = Self.halfWeight([4, 6], .bf16, seed: 1), b = Self.halfWeight([2, 6], .bf16, seed: 2)
        let ab = try Weight.concatenatingRows([a, b])
        #expect(ab.shape == [6, 6] && ab.dtype == .bf16)
        #expect(ab.float32().data == a.float32().data + b.float32().data)
        #expect(try ab.gatherRows([5, 0]).data == Array(b.float32().data[6..<12]) + Array(a.float32().data[0..<6]))
        #expect(throws: TensorError.self) { try ab.gatherRows([6]) }
        #expect(throws: TensorError.self) { try Weight.concatenatingRows([a, a.converted(to: .f16)]) }
        #expect(try ab.reshaped([36]).count == 36)
        #expect(ab.byteCount == 72)
    }

    @Test("checkpoints keep F16/BF16 as stored under .stored and widen under .float32 (safetensors)")
    func checkpointPrecision() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Tensor(shape: [3, 4], data: Self.values(12, seed: 8))
        for type in [SafetensorsWriter.StorageType.bf16, .f16, .f32] {
            let url = dir.appendingPathComponent("\(type.rawValue).safetensors")
            try SafetensorsWriter.write(["w": t], to: url, as: type)
            let checkpoint = try Checkpoint(url: url)
            let stored = try checkpoint.weight(named: "w", precision: .stored)
            let widened = try checkpoint.weight(named: "w", precision: .float32)
            #expect(stored.dtype.rawValue == type.rawValue)
            #expect(widened.dtype == .f32)
            #expect(stored.float32().data == widened.float32().data)
            #expect(widened.float32().data == (try checkpoint.tensor(named: "w")).data)
            let reader = CheckpointReader(checkpoint, precision: .stored)
            #expect(throws: TensorError.self) { try reader.takeWeight("w", shape: [4, 3]) }
            #expect(try reader.takeWeight("w", shape: [3, 4]).dtype.rawValue == type.rawValue)
        }
    }
}
