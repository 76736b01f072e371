import ArgumentParser
import Tensor

/// `storyloom doctor`: what the math runs on — OpenBLAS's build and kernels, who chose them, threads, and
/// the CPU flags that decide which kernels can run.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show the OpenBLAS build, the kernels it runs and who chose them, threads, the CPU's AVX2/FMA/AVX-512 flags, the heap's policy and what runs the Winograd, linear and convolution products.")

    func run() throws {
        for line in BLASKernels.report.lines { print(line) }
        print(HeapPolicy.description)
        print(winogradProductsDescription)
        print(linearProductsDescription)
        print(convProductsDescription)
    }
}
