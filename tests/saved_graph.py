"""Reads a SavedModel's graph: which `tf.while_loop` bodies each signature runs.

    loops = while_loop_bodies(version_dir)   # signature key -> set of body names

Two signatures that call one traced function reach the same loop bodies; two
that traced the same Python code separately reach bodies of other names.
"""

import os


def while_loop_bodies(version_dir):
    """`{signature key: names of the While bodies it reaches}`, following
    function calls (`PartitionedCall`, loop bodies, conditions) down."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    graph = saved.meta_graphs[0]
    library = {function.signature.name: function for function in graph.graph_def.library.function}

    def reached(name, seen):
        bodies = set()
        for node in library[name].node_def:
            if node.op in ("While", "StatelessWhile"):
                bodies.add(node.attr["body"].func.name)
            for attr in node.attr.values():
                callee = attr.func.name if attr.HasField("func") else None
                if callee in library and callee not in seen:
                    seen.add(callee)
                    bodies |= reached(callee, seen)
        return bodies

    calls = {node.name: node.attr["f"].func.name for node in graph.graph_def.node
             if node.op in ("StatefulPartitionedCall", "PartitionedCall")}
    loops = {}
    for key, signature in graph.signature_def.items():
        nodes = {output.name.split(":")[0] for output in signature.outputs.values()}
        functions = {calls[node] for node in nodes if node in calls}
        loops[key] = set().union(*(reached(function, set()) for function in functions))
    return loops
