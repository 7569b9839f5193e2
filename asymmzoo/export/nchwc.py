"""Channel padding that keeps an ONNX graph in onnxruntime's blocked (NCHWc) layout on every CPU.

onnxruntime runs convolutions in a blocked layout of B channels (its MLAS ``NchwcBlockSize``: 8 with
AVX2 kernels, 16 with AVX-512 ones). A pointwise conv's output is padded to a multiple of B inside
onnxruntime, but a depthwise conv, a pointwise conv's *input* and every input of a ``Concat`` must
already be a multiple of B; where one is not, onnxruntime reorders the map to plain NCHW and back
around that node. AsymmNet's ``X | Y | X`` concats (and MobileNet-style widths such as 24, 40, 72 or
120 channels) are multiples of 8 but often not of 16, so the same graph that is blocked end to end
on an AVX2 host gets dozens of reorders on an AVX-512 host.

:func:`pad_channels` rewrites the graph so that every channel count it can is a multiple of B: a
convolution that mixes channels gets zero output rows (its padded outputs are exactly 0) and zero
input columns for the padded channels of its input; per-channel ops (depthwise conv, BatchNorm) get
zero weights there; elementwise ops, pooling and resizing carry the padding through; a concat
places each padded part at a multiple of B. Padded channels never reach a real one (every
channel-mixing op gives them zero weight), so the function is unchanged; a consumer the pass does
not know (``Flatten``, ``Gemm``, a graph output) receives the real channels through a ``Slice`` or
``Gather``. Convolutions whose output goes only to such a consumer keep their width (the classifier
is not padded).

:func:`nchwc_block_size` asks the installed onnxruntime which B it uses on this CPU, by optimising
a probe graph, so the padding follows what the runtime does rather than a guess from the CPU flags.
"""
import functools
import os
import tempfile

import numpy as np

__all__ = ['nchwc_block_size', 'pad_channels']

# ops that act channel by channel with no parameters: output layout = input layout
_UNARY = {'Relu', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Clip', 'LeakyRelu', 'Identity',
          'GlobalAveragePool', 'GlobalMaxPool', 'MaxPool', 'AveragePool'}
_BINARY = {'Add', 'Mul', 'Sub'}


@functools.lru_cache(maxsize=None)
def nchwc_block_size():
    """The channel block of onnxruntime's NCHWc layout on this CPU (8 on AVX2, 16 on AVX-512),
    or 1 if onnxruntime does not use the blocked layout here. Found by letting onnxruntime
    optimise a probe graph: the ``Concat`` of a b-channel and a 64-channel conv stays in the blocked
    layout (no ``ReorderInput`` before the conv that reads it) only when b is a multiple of the
    block."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper, TensorProto
    for b in (4, 8, 16, 32, 64):
        rng = np.random.RandomState(0)
        inits = [numpy_helper.from_array(rng.standard_normal((b, 3, 1, 1)).astype(np.float32), 'w1'),
                 numpy_helper.from_array(rng.standard_normal((64, 3, 1, 1)).astype(np.float32), 'w2'),
                 numpy_helper.from_array(rng.standard_normal((2 * b, 64 + b, 1, 1)).astype(np.float32),
                                         'w3')]
        nodes = [helper.make_node('Conv', ['x', 'w1'], ['a']),
                 helper.make_node('Conv', ['x', 'w2'], ['b']),
                 helper.make_node('Concat', ['a', 'b'], ['c'], axis=1),
                 helper.make_node('Conv', ['c', 'w3'], ['y'])]
        graph = helper.make_graph(
            nodes, 'probe', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
            [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2 * b, 8, 8])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
        model.ir_version = 7
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        with tempfile.TemporaryDirectory(prefix='asymmzoo-nchwc-') as tmp:
            so.optimized_model_filepath = os.path.join(tmp, 'opt.onnx')
            ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
            opt = onnx.load(so.optimized_model_filepath)
        ops = [(n.op_type, n.domain) for n in opt.graph.node]
        if not any(d == 'com.microsoft.nchwc' for _, d in ops):
            return 1   # no blocked layout on this CPU / build
        if ('ReorderInput', 'com.microsoft.nchwc') not in ops:
            return b   # the concat stayed blocked: its parts are whole blocks
    return 1


def _align(c, block):
    return -(-c // block) * block


class _Layouts(object):
    """Union-find over channel layouts. A layout maps the C real channels of a tensor to positions
    in a padded tensor of P channels; it is *free* until an op fixes it (a conv's output rows can go
    anywhere, so it takes whatever its first demanding consumer needs)."""

    def __init__(self, block):
        self.block = block
        self.parent, self.c, self.pos, self.p = [], [], [], []

    def new(self, c, pos=None, p=None):
        self.parent.append(len(self.parent))
        self.c.append(int(c))
        self.pos.append(None if pos is None else np.asarray(pos, dtype=np.int64))
        self.p.append(p if p is not None else (None if pos is None else int(c)))
        return len(self.parent) - 1

    def identity(self, c):
        return self.new(c, np.arange(c), c)

    def root(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def fix(self, i, pad=True):
        r = self.root(i)
        if self.pos[r] is None:
            c = self.c[r]
            self.pos[r] = np.arange(c)
            self.p[r] = _align(c, self.block) if pad else c
        return self.pos[r], self.p[r]

    def is_free(self, i):
        return self.pos[self.root(i)] is None

    def is_identity(self, i):
        pos, p = self.pos[self.root(i)], self.p[self.root(i)]
        return pos is not None and p == self.c[self.root(i)] and np.array_equal(pos, np.arange(p))

    def unify(self, a, b):
        """Make a and b one layout; False if both are fixed and differ."""
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return True
        if self.c[ra] != self.c[rb]:
            return False
        fa, fb = self.pos[ra] is None, self.pos[rb] is None
        if not fa and not fb:
            return self.p[ra] == self.p[rb] and np.array_equal(self.pos[ra], self.pos[rb])
        if fa:
            self.parent[ra] = rb
        else:
            self.parent[rb] = ra
        return True


def pad_channels(model, block=None):
    """Pad ``model``'s channels in place to multiples of ``block`` (default
    :func:`nchwc_block_size`) where that keeps onnxruntime's blocked layout; see the module's text.
    The graph must have static channel counts (run shape inference first if its value_info is
    empty: this function does). Returns the number of tensors whose width changed (0: the graph
    was already aligned, or ``block`` <= 1)."""
    import onnx
    from onnx import helper, numpy_helper
    block = nchwc_block_size() if block is None else int(block)
    if block <= 1:
        return 0
    g = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for n in g.node for a in n.attribute):
        return 0   # control flow (If / Loop / Scan): reads inside subgraphs are not tracked
    opset = max([o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] or [0])
    taken = {t for n in g.node for t in list(n.input) + list(n.output)} | \
        {i.name for i in g.initializer} | {i.name for i in g.input} | {o.name for o in g.output}

    def fresh(name):
        """A tensor / initializer name not used in the graph yet."""
        k, new = 0, name
        while new in taken:
            k += 1
            new = '%s_%d' % (name, k)
        taken.add(new)
        return new
    inferred = onnx.shape_inference.infer_shapes(model)
    chans = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) >= 2 and dims[1].HasField('dim_value'):
            chans[vi.name] = (len(dims), dims[1].dim_value)
    inits = {i.name: i for i in g.initializer}
    arrays = {}

    def arr(name):
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    def attr(node, key, default=None):
        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}

    L = _Layouts(block)
    lay = {}            # tensor name -> layout id (4-D feature maps only)
    todo = []           # weight rewrites, run once every layout is fixed
    materialize = []    # (node, input index, tensor): give this consumer the real channels

    def layout_of(t):
        if t not in lay:
            nd, c = chans.get(t, (0, 0))
            lay[t] = L.identity(c) if nd == 4 else None
        return lay[t]

    def is_param(t):
        return t in inits

    for n in g.node:
        op = n.op_type if n.domain in ('', 'ai.onnx') else None
        ins = list(n.input)
        if op in _UNARY and len(n.output) != 1:
            op = None   # MaxPool's Indices output: not a per-channel map of its input
        if op == 'Conv' and len(ins) >= 2 and is_param(ins[1]) and (len(ins) < 3 or is_param(ins[2])):
            w = arr(ins[1])
            group = attr(n, 'group', 1)
            xl = layout_of(ins[0])
            if xl is None:
                continue
            if group == 1:
                out = L.new(w.shape[0])           # free: rows go where the consumers want them
                todo.append(('conv', n, xl, out))
                lay[n.output[0]] = out
            elif w.shape[1] == 1 and group == w.shape[0] == L.c[L.root(xl)]:
                todo.append(('dw', n, xl, xl))     # depthwise: channel by channel
                lay[n.output[0]] = xl
            else:
                materialize.append((n, 0, ins[0]))
        elif op == 'BatchNormalization' and all(is_param(t) for t in ins[1:5]) \
                and layout_of(ins[0]) is not None:
            todo.append(('bn', n, lay[ins[0]], lay[ins[0]]))
            lay[n.output[0]] = lay[ins[0]]
        elif op in _UNARY and layout_of(ins[0]) is not None:
            lay[n.output[0]] = lay[ins[0]]
        elif op == 'Resize' and layout_of(ins[0]) is not None and len(ins) >= 3 and is_param(ins[2]) \
                and list(arr(ins[2])[:2]) == [1, 1]:
            lay[n.output[0]] = lay[ins[0]]
        elif op in _BINARY and len(ins) == 2:
            a, b = layout_of(ins[0]), layout_of(ins[1])
            if a is not None and b is not None and L.c[L.root(a)] == L.c[L.root(b)] and L.unify(a, b):
                lay[n.output[0]] = a
            else:
                for k, t in enumerate(ins):
                    if layout_of(t) is not None:
                        materialize.append((n, k, t))
        elif op == 'Concat' and attr(n, 'axis') == 1 and all(layout_of(t) is not None for t in ins):
            pos, off = [], 0
            for t in ins:
                p_pos, p_p = L.fix(lay[t])
                pos.append(p_pos + off)
                off += p_p
            lay[n.output[0]] = L.new(sum(L.c[L.root(lay[t])] for t in ins), np.concatenate(pos), off)
        else:
            for k, t in enumerate(ins):
                if t and layout_of(t) is not None:
                    materialize.append((n, k, t))
    for t in outputs:
        if layout_of(t) is not None:
            materialize.append((None, None, t))
    # a tensor that only a sink reads keeps its real width (no pad, no slice)
    for _, _, t in materialize:
        if L.is_free(lay[t]):
            L.fix(lay[t], pad=False)
    for t in list(lay):
        if lay[t] is not None:
            L.fix(lay[t])

    changed = sum(1 for t in lay if lay[t] is not None and not L.is_identity(lay[t]))
    if not changed:
        return 0

    def set_param(name, value):
        arrays[name] = value
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(arr(name).dtype), name))

    def spread(v, pos, p, axis=0, fill=0.0):
        shape = list(v.shape)
        shape[axis] = p
        out = np.full(shape, fill, dtype=v.dtype)
        idx = [slice(None)] * v.ndim
        idx[axis] = pos
        out[tuple(idx)] = v
        return out

    used = {}
    for i in g.initializer:
        used[i.name] = 0
    for n in g.node:
        for t in n.input:
            if t in used:
                used[t] += 1

    def own_param(node, k):
        """The node's k-th input as an initializer it alone uses (copied if shared)."""
        name = node.input[k]
        if used[name] > 1:
            new = fresh('%s_padded' % name)
            g.initializer.append(numpy_helper.from_array(arr(name), new))
            inits[new] = g.initializer[-1]
            arrays[new] = arr(name)
            used[name] -= 1
            used[new] = 1
            node.input[k] = new
        return node.input[k]

    for kind, n, il, ol in todo:
        ipos, ip = L.fix(il)
        opos, op_ = L.fix(ol)
        if kind == 'conv':
            w = arr(n.input[1])
            if not (ip == w.shape[1] and np.array_equal(ipos, np.arange(ip))) or \
                    not (op_ == w.shape[0] and np.array_equal(opos, np.arange(op_))):
                set_param(own_param(n, 1), spread(spread(w, ipos, ip, axis=1), opos, op_, axis=0))
                if len(n.input) >= 3 and n.input[2]:
                    set_param(own_param(n, 2), spread(arr(n.input[2]), opos, op_))
        elif kind == 'dw':
            if not L.is_identity(il):
                w = arr(n.input[1])
                set_param(own_param(n, 1), spread(w, ipos, ip))
                if len(n.input) >= 3 and n.input[2]:
                    set_param(own_param(n, 2), spread(arr(n.input[2]), ipos, ip))
                for a in n.attribute:
                    if a.name == 'group':
                        a.i = ip
        elif kind == 'bn':
            if not L.is_identity(il):
                for k, fill in ((1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0)):   # scale, B, mean, var
                    set_param(own_param(n, k), spread(arr(n.input[k]), ipos, ip, fill=fill))
    # sinks read the real channels
    new_nodes, extra = [], {}
    for n, k, t in materialize:
        if L.is_identity(lay[t]):
            continue
        if t not in extra:
            pos, p = L.fix(lay[t])
            real = fresh(t + '_real')
            c = L.c[L.root(lay[t])]
            if np.array_equal(pos, np.arange(c)) and opset >= 10:
                starts = numpy_helper.from_array(np.array([0], np.int64), fresh(real + '_starts'))
                ends = numpy_helper.from_array(np.array([c], np.int64), fresh(real + '_ends'))
                axes = numpy_helper.from_array(np.array([1], np.int64), fresh(real + '_axes'))
                g.initializer.extend([starts, ends, axes])
                node = helper.make_node('Slice', [t, starts.name, ends.name, axes.name], [real],
                                        name=real + '_slice')
            else:
                idx = numpy_helper.from_array(pos.astype(np.int64), fresh(real + '_index'))
                g.initializer.append(idx)
                node = helper.make_node('Gather', [t, idx.name], [real], axis=1, name=real + '_gather')
            extra[t] = (real, node)
    if extra:
        graph_out = {}
        for t, (real, node) in extra.items():
            if t in outputs:
                graph_out[t] = real
        after = {t: t for t in extra}   # the tensor after which each slice / gather goes
        # a graph output keeps its name: rename the padded producer's tensor instead
        for t in graph_out:
            padded = fresh(t + '_padded')
            after[padded] = t
            del after[t]
            for m in g.node:
                m.output[:] = [padded if o == t else o for o in m.output]
                m.input[:] = [padded if i == t else i for i in m.input]
            real, node = extra[t]
            node.input[0] = padded
            node.output[0] = t
            extra[t] = (t, node)
        for n, k, t in materialize:
            if n is not None and t in extra:
                n.input[k] = extra[t][0]
        inserted = set()
        for m in g.node:
            new_nodes.append(m)
            for o in m.output:
                key = after.get(o)
                if key is not None and key not in inserted:
                    new_nodes.append(extra[key][1])
                    inserted.add(key)
        for t, (real, node) in extra.items():     # a graph input read by a sink
            if t not in inserted:
                new_nodes.insert(0, node)
        del g.node[:]
        g.node.extend(new_nodes)
    del g.value_info[:]   # shapes changed: re-inferred by onnxruntime
    return changed
