import Foundation
import Tensor

/// GILL's decision head: `Sequential(Dropout, Linear(D, 2))` on the `[IMG0]` hidden state (the
/// dropout is off at inference), its softmax read through `classes` — GILL's `idx2dec` order
/// `[gen, ret]` unless a folder's config says otherwise (`decision_classes`).
public struct GILLDecisionHead: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let classes: [GILLDecision]

    public init(weight: Tensor, bias: Tensor, classes: [GILLDecision]) throws {
        guard weight.shape.count == 2, weight.shape[0] == classes.count, bias.shape == [classes.count] else {
            throw ModelError("decision head: weight \(weight.shape) and bias \(bias.shape) do not give \(classes.count) classes \(classes.map(\.rawValue))")
        }
        self.weight = weight
        self.bias = bias
        self.classes = classes
    }

    /// GILL's released `decision_model.pth.tar` (`{'state_dict': {'1.weight', '1.bias'}}`, any `module.`).
    public static func load(released url: URL, classes: [GILLDecision] = [.gen, .ret]) throws -> GILLDecisionHead {
        let state = try TorchCheckpoint(url: url).stateDict(strippingPrefixes: ["module."])
        guard let w = state["1.weight"], let b = state["1.bias"] else {
            throw ModelError("\(url.path): expected tensors '1.weight' and '1.bias' (Sequential(Dropout, Linear)); found \(state.keys.sorted())")
        }
        return try GILLDecisionHead(weight: w, bias: b, classes: classes)
    }

    /// Softmax over the classes for one `[IMG0]` hidden state, in `classes` order.
    public func probabilities(_ img0: [Float]) throws -> [Float] {
        guard img0.count == weight.shape[1] else {
            throw ModelError("decision head expects a \(weight.shape[1])-wide [IMG0] hidden state, got \(img0.count)")
        }
        var logits = try linear(try Tensor(shape: [1, img0.count], data: img0), weight: weight, bias: bias)
        softmaxLastDimension(&logits)
        return logits.data
    }

    /// The class GILL's code picks (`idx2dec[argmax]`).
    public func decide(_ img0: [Float]) throws -> GILLDecision {
        let p = try probabilities(img0)
        return classes[p.indices.max { p[$0] < p[$1] }!]
    }
}
