import Foundation

/// Which steps read which: one graph for validation (cycles, reported with their path) and the Planner
/// (the order steps run in).
struct StepGraph {
    let steps: [StepSpec]
    let byID: [String: StepSpec]

    init(_ steps: [StepSpec]) {
        self.steps = steps
        byID = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Step ids a step reads from, sorted.
    func dependencies(of step: StepSpec) -> [String] {
        Set(step.inputs.values.compactMap {
            if case .step(let id, _, _) = $0.source, byID[id] != nil { return id }
            return nil
        }).sorted()
    }

    /// Each cycle as the ids along it, first id repeated at the end (`a → b → a`).
    func cycles() -> [[String]] {
        var found: [[String]] = []
        var state: [String: Int] = [:]   // 1 = on the stack, 2 = done
        func visit(_ id: String, path: [String]) {
            if state[id] == 2 { return }
            if state[id] == 1 {
                found.append(Array(path.drop { $0 != id }) + [id])
                return
            }
            state[id] = 1
            for dep in dependencies(of: byID[id]!) { visit(dep, path: path + [id]) }
            state[id] = 2
        }
        for step in steps where state[step.id] == nil { visit(step.id, path: []) }
        return found
    }

    /// The steps ordered so that each comes after every step it reads (declaration order otherwise).
    func order() throws -> [StepSpec] {
        if let cycle = cycles().first { throw StepError("steps form a cycle: \(cycle.joined(separator: " → "))") }
        var done = Set<String>()
        var out: [StepSpec] = []
        func visit(_ s: StepSpec) {
            if done.contains(s.id) { return }
            done.insert(s.id)
            for dep in dependencies(of: s) { visit(byID[dep]!) }
            out.append(s)
        }
        for s in steps { visit(s) }
        return out
    }
}
