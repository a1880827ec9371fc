#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch

/// A value handed to parallel workers that write disjoint parts of it.
package struct UncheckedSendable<T>: @unchecked Sendable {
    package var value: T
    package init(_ value: T) { self.value = value }
}

package func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// One step of a two-stage pipeline: the `slices` tasks of `prepare` for
/// this chunk and, as one more task, `acceptPrevious` (the in-order stage for
/// the chunk before) share the cores; returns what the in-order stage returned.
package func pipelineStep<R: Sendable>(slices: Int, acceptPrevious: (@Sendable () -> R?)?, prepare: @Sendable (Int) -> Void) -> R? {
    var result: R?
    withUnsafeMutablePointer(to: &result) { slot in
        let out = UncheckedSendable(slot)
        guard let accept = acceptPrevious else { return concurrentPerform(slices, prepare) }
        concurrentPerform(slices + 1) { t in
            if t == 0 { out.value.pointee = accept() } else { prepare(t - 1) }
        }
    }
    return result
}

package func concurrentPerform(_ n: Int, _ body: @Sendable (Int) -> Void) {
    if n == 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}
