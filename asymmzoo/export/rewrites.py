"""Rewrites of an exported ONNX graph that keep its function and make onnxruntime faster.

* :func:`_strip_initializer_inputs`: the weights out of the graph inputs, so that onnxruntime
  constant-folds them (BatchNorm folds into the convs);
* :func:`_fuse_hard_activations`: the four-op h-swish / h-sigmoid -> ONNX ``HardSwish`` /
  ``HardSigmoid`` (one kernel instead of four);
* :func:`_split_concats`: AsymmNet's feature-reuse concats moved after the depthwise conv, or replaced
  by a sum of partial projections, as :func:`reuse_concat_policy` chooses per concat;
* :func:`_blocked_se_scaling`: the SE scaling kept in onnxruntime's blocked layout (static batch
  sizes only, see :func:`asymmzoo.export.static_batch_model`).

Each changes an ``onnx.ModelProto`` in place and returns the number of places it rewrote; onnx is
imported inside them. The channel padding for onnxruntime's NCHWc layout is in :mod:`.nchwc`.
"""
import numpy as np


def _strip_initializer_inputs(model):
    """MXNet's exporter lists every weight as a graph input too, which stops onnxruntime from
    constant-folding them (no BN folding); drop those inputs."""
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def _name_nodes(model):
    """The exporter leaves some nodes unnamed: give every node a unique name (rewrites use them)."""
    seen = set()
    for k, n in enumerate(model.graph.node):
        if not n.name or n.name in seen:
            n.name = '%s_%s_%d' % (n.name or 'node', n.op_type, k)
        seen.add(n.name)


def _inferred_shapes(model):
    """``{tensor name: [dim or None, ...]}`` from ONNX shape inference (empty if it fails)."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # pragma: no cover - exotic graphs
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField('dim_value') else None for d in dims]
    return shapes


def _fuse_hard_activations(model):
    """Rewrite ``Div(Clip(Add(x, 3), 0, 6), 6)`` -> ``HardSigmoid(x; alpha=1/6, beta=1/2)`` and
    ``Mul(x, HardSigmoid(x))`` -> ``HardSwish(x)``: the same function in one kernel instead of four.
    ``HardSwish`` needs opset 14: a graph exported at opset 13 (:data:`EXPORT_OPSET`) is declared
    14 when one is made (no operator of these graphs changes meaning between 13 and 14). Returns
    the number of rewritten activations."""
    from onnx import helper, numpy_helper
    g = model.graph
    opset = max([o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] or [0])
    _name_nodes(model)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value':
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in g.node for o in n.output}
    n_users = {}
    for n in g.node:
        for i in n.input:
            n_users[i] = n_users.get(i, 0) + 1
    for o in g.output:
        n_users[o.name] = n_users.get(o.name, 0) + 1

    def scalar(name, value):
        v = consts.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) < 1e-7

    def clip_0_6(clip):
        if len(clip.input) >= 3:
            return scalar(clip.input[1], 0.0) and scalar(clip.input[2], 6.0)
        attrs = {a.name: a.f for a in clip.attribute}
        return abs(attrs.get('min', -1) - 0.0) < 1e-7 and abs(attrs.get('max', -1) - 6.0) < 1e-7

    replace, remove = {}, set()   # node name -> new node ; names of nodes to drop
    hsig = {}                     # HardSigmoid output -> (its x, name of the Div it replaces)
    for div in g.node:
        if div.op_type != 'Div' or not scalar(div.input[1], 6.0):
            continue
        clip = producer.get(div.input[0])
        if clip is None or clip.op_type != 'Clip' or not clip_0_6(clip) or n_users[clip.output[0]] != 1:
            continue
        addn = producer.get(clip.input[0])
        if addn is None or addn.op_type != 'Add' or n_users[addn.output[0]] != 1:
            continue
        if scalar(addn.input[1], 3.0):
            x = addn.input[0]
        elif scalar(addn.input[0], 3.0):
            x = addn.input[1]
        else:
            continue
        replace[div.name] = helper.make_node('HardSigmoid', [x], [div.output[0]], alpha=1.0 / 6,
                                             beta=0.5, name=div.name + '_hsigmoid')
        remove.update([clip.name, addn.name])
        hsig[div.output[0]] = (x, div.name)
    bumpable = opset == 13 and not any(  # BN-14 allows its statistics outputs only in training
        n.op_type == 'BatchNormalization' and len([o for o in n.output if o]) > 1 for n in g.node)
    if opset >= 14 or bumpable:
        for mul in g.node:
            if mul.op_type != 'Mul':
                continue
            a, b = mul.input[0], mul.input[1]
            for h, x in ((b, a), (a, b)):
                if h in hsig and hsig[h][0] == x and n_users[h] == 1:
                    div_name = hsig.pop(h)[1]
                    del replace[div_name]
                    remove.add(div_name)
                    replace[mul.name] = helper.make_node('HardSwish', [x], [mul.output[0]],
                                                         name=mul.name + '_hswish')
                    break
    if not replace:
        return 0
    if opset < 14 and any(n.op_type == 'HardSwish' for n in replace.values()):
        for o in model.opset_import:
            if o.domain in ('', 'ai.onnx'):
                o.version = 14
    new_nodes = [replace.get(n.name, n) for n in g.node if n.name not in remove]
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return len(replace)


SPLIT_ALL_FROM_BATCH = 16


def reuse_concat_policy(strides, shape, has_se):
    """Default choice, per AsymmNet feature-reuse concat, of :func:`_split_concats`' rewrite.

    ``shape`` is the depthwise output's inferred shape (N, C, H, W); N is known when the batch size
    is fixed (:func:`static_batch_model`, ``export_onnx(dynamic_batch=False)``), else None.
    ``has_se`` is kept in the signature for policies of your own (the default no longer needs it).

    * N >= ``SPLIT_ALL_FROM_BATCH`` (16) -> ``'split'`` everywhere: at large batches the copies
      cost more than the extra partial convs (per-node kernel time of asymmnet_large_1.0 at batch
      32, static shapes: 131 ms split vs 144 ms with the small-batch rule; 61 vs 65 ms at 16;
      equal at 4 and 8);
    * otherwise (batch 1 to 15, or a symbolic batch), per block:

      * strided depthwise -> ``'late'``: the concat moves after the depthwise conv, onto maps 4x
        smaller (most of the copy's cost is the 112x112 / 56x56 block inputs);
      * stride 1 -> ``'keep'``: one copy, and the projection stays one conv that onnxruntime fuses
        with the residual sum. Splitting (no copy, the projection summed from its parts) costs
        four more nodes per block and a separate residual ``Add``; in the static-shape sessions
        that is more than the copy it saves (asymmnet_large_1.0, batch 1, 2 threads, profiled
        kernel time of the three 14x14 stride-1 blocks without SE: 198-213 us kept in 4 nodes vs
        221-235 us split in 8; the whole network was 2-3% faster in paired runs at batch 1, 4
        and 8, asymmnet_small_1.0 5-10%, equal with one thread).
    """
    if shape and shape[0] and shape[0] >= SPLIT_ALL_FROM_BATCH:
        return 'split'
    return 'late' if list(strides or [1, 1]) != [1, 1] else 'keep'


def _split_reused_concats(model, policy=reuse_concat_policy):
    """See :func:`_split_concats`. Returns the number of concats rewritten."""
    _name_nodes(model)
    return _split_concats(model, policy)


def _split_concats(model, policy=reuse_concat_policy):
    """AsymmNet's rewrites of the feature-reuse concat ``[X]*r | Y | [X]*r`` (same function).

    A depthwise conv, its BN and activation act channel by channel, so the concat can move after
    them (``'late'``)::

        Concat(X, Y, X) -> DWConv -> BN -> act  =  Concat(act(BN_i(DWConv_i(part_i))))

    which copies the (strided, smaller) depthwise outputs instead of the block input. And a 1x1
    projection of a concatenation is the sum of the projections of its parts (``'split'``)::

        Concat(X, Y, X) -> DWConv -> BN -> act [-> SE] -> Conv1x1 -> BN
      = sum_i Conv1x1_i(act(BN_i(DWConv_i(part_i)))) [SE: pooled parts concatenated, scale split]

    with the projection's BN folded into the partial 1x1 convs: no copy at all. ``policy(strides,
    shape, has_se)`` picks ``'late'``, ``'split'`` or ``'keep'`` per concat (default
    :func:`reuse_concat_policy`). Float summation order aside the function is unchanged; the export
    check compares with MXNet. Returns the number of rewrites.
    """
    from onnx import helper, numpy_helper
    g = model.graph
    shapes = _inferred_shapes(model)
    inits = {i.name: i for i in g.initializer}

    def arr(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    for o in g.output:
        users.setdefault(o.name, []).append(None)

    def only_user(name, op=None):
        u = users.get(name, [])
        if len(u) != 1 or u[0] is None or (op and u[0].op_type != op):
            return None
        return u[0]

    def attr(node, key, default=None):
        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    new_inits, count = [], 0
    remove, insert_at = set(), {}   # node names to drop; name of the node after which to insert

    def add_init(name, value):
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def dw_parts(tag, cat, chans, dw, bn, act):
        """Per concat part: its slice of the depthwise conv, BN and activation (node list, parts)."""
        wdw = arr(dw.input[1])
        gamma, beta, mean, var = [arr(i) for i in bn.input[1:5]]
        eps = attr(bn, 'epsilon', 1e-5)
        d_attrs = {a.name: helper.get_attribute_value(a) for a in dw.attribute}
        a_attrs = {a.name: helper.get_attribute_value(a) for a in act.attribute}
        nodes, parts, start = [], [], 0
        for k, (src, c) in enumerate(zip(cat.input, chans)):
            sl = np.arange(start, start + c)
            start += c
            p = '%s_part%d' % (tag, k)
            nodes.append(helper.make_node('Conv', [src, add_init(p + '_dw_w', wdw[sl])], [p + '_dw'],
                                          name=p + '_dw', **dict(d_attrs, group=c)))
            nodes.append(helper.make_node(
                'BatchNormalization', [p + '_dw', add_init(p + '_bn_g', gamma[sl]),
                                       add_init(p + '_bn_b', beta[sl]), add_init(p + '_bn_m', mean[sl]),
                                       add_init(p + '_bn_v', var[sl])],
                [p + '_bn'], name=p + '_bn', epsilon=eps))
            nodes.append(helper.make_node(act.op_type, [p + '_bn'] + list(act.input[1:]), [p + '_act'],
                                          name=p + '_act', **a_attrs))
            parts.append((p, sl))
        return nodes, parts

    for cat in list(g.node):
        if cat.op_type != 'Concat' or attr(cat, 'axis') != 1 or len(cat.input) < 2:
            continue
        chans = [shapes.get(i, [None, None])[1] for i in cat.input]
        if any(c is None for c in chans):
            continue
        dw = only_user(cat.output[0], 'Conv')
        if dw is None or len(dw.input) != 2 or arr(dw.input[1]) is None:
            continue
        total = sum(chans)
        wdw = arr(dw.input[1])
        if attr(dw, 'group', 1) != total or wdw.shape[0] != total:
            continue
        bn = only_user(dw.output[0], 'BatchNormalization')
        if bn is None or any(arr(i) is None for i in bn.input[1:5]):
            continue
        act = only_user(bn.output[0])
        if act is None or act.op_type not in ('Relu', 'HardSwish', 'HardSigmoid', 'Clip', 'Sigmoid'):
            continue
        if act.op_type == 'Clip' and any(arr(i) is None for i in act.input[1:] if i):
            continue
        strides = attr(dw, 'strides', [1, 1])
        has_se = {n.op_type for n in users.get(act.output[0], []) if n is not None} == \
            {'GlobalAveragePool', 'Mul'}
        choice = policy(strides, shapes.get(act.output[0]), has_se)
        if choice not in ('late', 'split', 'keep'):
            raise ValueError("reuse-concat policy returned %r; expected 'late', 'split' or 'keep'"
                             % (choice,))
        if choice == 'keep':
            continue
        if choice == 'late':
            # depthwise / BN / activation per part, the concat moved after them (on the strided,
            # smaller maps); SE and projection untouched
            tag = cat.name
            nodes, _ = dw_parts(tag, cat, chans, dw, bn, act)
            nodes.append(helper.make_node('Concat', ['%s_part%d_act' % (tag, k)
                                                     for k in range(len(chans))],
                                          [act.output[0]], name=tag + '_late', axis=1))
            remove.update(n.name for n in (cat, dw, bn, act))
            insert_at[act.name] = nodes
            count += 1
            continue
        se = None
        u = users.get(act.output[0], [])
        if len(u) == 1 and u[0] is not None and u[0].op_type == 'Conv':
            proj = u[0]
        elif len(u) == 2 and {n.op_type for n in u if n is not None} == {'GlobalAveragePool', 'Mul'}:
            gap = [n for n in u if n.op_type == 'GlobalAveragePool'][0]
            mul = [n for n in u if n.op_type == 'Mul'][0]
            fc1 = only_user(gap.output[0], 'Conv')
            relu = fc1 is not None and only_user(fc1.output[0])
            fc2 = relu is not None and relu is not False and only_user(relu.output[0], 'Conv')
            hs = fc2 is not None and fc2 is not False and only_user(fc2.output[0])
            if not hs or hs.op_type not in ('HardSigmoid', 'Sigmoid') or mul.input[1] != hs.output[0] \
                    or mul.input[0] != act.output[0] or relu.op_type != 'Relu' or \
                    arr(fc2.input[1]) is None or len(fc2.input) < 3 or arr(fc2.input[2]) is None:
                continue
            proj = only_user(mul.output[0], 'Conv')
            se = (gap, fc1, relu, fc2, hs, mul)
        else:
            continue
        if proj is None or len(proj.input) != 2 or arr(proj.input[1]) is None or \
                tuple(arr(proj.input[1]).shape[2:]) != (1, 1) or attr(proj, 'group', 1) != 1:
            continue
        pbn = only_user(proj.output[0], 'BatchNormalization')
        if pbn is None or any(arr(i) is None for i in pbn.input[1:5]):
            continue
        # ---- rewrite ----
        tag = cat.name
        pg, pb_, pm, pv = [arr(i) for i in pbn.input[1:5]]
        peps = attr(pbn, 'epsilon', 1e-5)
        pscale = pg / np.sqrt(pv + peps)
        pbias = pb_ - pm * pscale
        wproj = arr(proj.input[1]) * pscale[:, None, None, None]
        nodes, parts = dw_parts(tag, cat, chans, dw, bn, act)
        feats = [p + '_act' for p, _ in parts]
        if se is not None:
            gap, fc1, relu, fc2, hs, mul = se
            for p, _ in parts:
                nodes.append(helper.make_node('GlobalAveragePool', [p + '_act'], [p + '_gap'],
                                              name=p + '_gap'))
            nodes.append(helper.make_node('Concat', [p + '_gap' for p, _ in parts], [tag + '_se_in'],
                                          name=tag + '_se_in', axis=1))
            nodes.append(helper.make_node('Conv', [tag + '_se_in'] + list(fc1.input[1:]),
                                          [fc1.output[0]], name=fc1.name + '_split',
                                          **{a.name: helper.get_attribute_value(a) for a in fc1.attribute}))
            nodes.append(relu)
            w2, b2 = arr(fc2.input[1]), arr(fc2.input[2])
            hs_attrs = {a.name: helper.get_attribute_value(a) for a in hs.attribute}
            feats = []
            for p, sl in parts:
                nodes.append(helper.make_node('Conv', [relu.output[0], add_init(p + '_fc2_w', w2[sl]),
                                                       add_init(p + '_fc2_b', b2[sl])],
                                              [p + '_fc2'], name=p + '_fc2',
                                              **{a.name: helper.get_attribute_value(a)
                                                 for a in fc2.attribute}))
                nodes.append(helper.make_node(hs.op_type, [p + '_fc2'], [p + '_gate'], name=p + '_gate',
                                              **hs_attrs))
                nodes.append(helper.make_node('Mul', [p + '_act', p + '_gate'], [p + '_se'],
                                              name=p + '_se'))
                feats.append(p + '_se')
            remove.update(n.name for n in (gap, fc1, relu, fc2, hs, mul))
        acc = None
        pr_attrs = {a.name: helper.get_attribute_value(a) for a in proj.attribute}
        for k, ((p, sl), f) in enumerate(zip(parts, feats)):
            ins = [f, add_init(p + '_proj_w', wproj[:, sl])]
            if k == 0:
                ins.append(add_init(p + '_proj_b', pbias))
            last = k == len(parts) - 1
            out = p + '_proj'
            nodes.append(helper.make_node('Conv', ins, [out], name=out, **pr_attrs))
            if acc is None:
                acc = out
            else:
                s_out = pbn.output[0] if last else p + '_sum'
                nodes.append(helper.make_node('Add', [acc, out], [s_out], name=p + '_sum'))
                acc = s_out
        remove.update(n.name for n in (cat, dw, bn, act, proj, pbn))
        insert_at[pbn.name] = nodes
        count += 1
    if not count:
        return 0
    new_nodes = []
    for n in g.node:
        if n.name in insert_at:
            new_nodes.extend(insert_at[n.name])
        elif n.name not in remove:
            new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return count


def _blocked_se_scaling(model):
    """SE scaling ``Mul(X, s)`` with ``s`` of shape (N, C, 1, 1) broadcast over X's known (H, W)
    becomes ``Mul(X, Resize(s -> H x W, nearest))``: the same numbers (nearest upsampling of a 1x1
    map replicates it), but onnxruntime then keeps the scaling in its blocked NCHWc layout -- the
    Resize runs as its NCHWc ``Upsample`` and the Mul sees two equal blocked shapes -- instead of
    reordering X to NCHW and back around a broadcasting Mul (two full copies of the map per SE
    block). onnxruntime proves the shapes equal only when the batch size is fixed; with a symbolic
    batch the extra op costs ~2%, so :func:`static_batch_model` applies this, not the dynamic
    export. Returns the number of rewritten Muls."""
    from onnx import helper, numpy_helper
    g = model.graph
    if not any(o.domain in ('', 'ai.onnx') and o.version >= 13 for o in model.opset_import):
        return 0   # Resize without a roi input needs opset 13
    shapes = _inferred_shapes(model)
    new_nodes, new_inits, count = [], [], 0
    for n in g.node:
        if n.op_type == 'Mul' and len(n.input) == 2:
            x, s = (shapes.get(i) for i in n.input)
            if x and s and len(x) == 4 and len(s) == 4 and s[2:] == [1, 1] and \
                    None not in x[1:] and x[2:] != [1, 1] and s[1] == x[1]:
                base = n.name or n.output[0]
                scales = base + '_se_scales'
                new_inits.append(numpy_helper.from_array(
                    np.array([1, 1, x[2], x[3]], dtype=np.float32), scales))
                full = base + '_se_full'
                new_nodes.append(helper.make_node(
                    'Resize', [n.input[1], '', scales], [full], name=base + '_se_resize',
                    mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'))
                n.input[1] = full
                count += 1
        new_nodes.append(n)
    if count:
        del g.node[:]
        g.node.extend(new_nodes)
        g.initializer.extend(new_inits)
    return count
