"""`asymmzoo detect`, `asymmzoo pose` and `asymmzoo embed`: inference with the task heads
(:mod:`asymmzoo.heads`) -- boxes / skeletons drawn to a PNG (gluoncv.utils.viz, matplotlib's Agg
backend) and L2-normalised face embeddings."""
import os

from ..utils import argtypes as A
from ._weights import add_weight_args, check_weight_args, load_weights

_SIZE = A.checked(int, lambda v: v >= 32, 'a size of at least 32 pixels')


def _load_weights(net, args, what):
    import mxnet as mx
    check_weight_args(args, "the training script's -best.params / -last.params", 'draws')
    load_weights(net, args, mx.init.Xavier(magnitude=2.0),
                 'random %s weights, the drawing means nothing' % what)


def _model_name(name, prefix, default_suffix=''):
    from ..registry import is_registered
    name = name.lower()
    if is_registered(name) and name.startswith(prefix):
        return name
    if is_registered(prefix + name + default_suffix):  # a backbone name
        return prefix + name + default_suffix
    if is_registered(name):
        raise ValueError("%s is not a %s* model; give a %s<backbone>%s name or a backbone name"
                         % (name, prefix, prefix, default_suffix))
    from ..registry import get_model
    get_model(name)  # raises the registry's "unknown model ... closest names" error


def _check_image(path, out=None):
    """An image file OpenCV can decode, and an output that is not that image (checked before any
    model is built)."""
    if not os.path.isfile(path):
        raise FileNotFoundError("image %s does not exist" % path)
    if out and os.path.exists(out) and os.path.samefile(path, out):
        raise ValueError("-o %s is the input image: write the drawing to another file (the image "
                         "would be lost)" % out)
    import cv2
    from ..data.folder import truncation_problem
    with open(path, 'rb') as f:
        problem = truncation_problem(f.read())
    if problem:
        raise ValueError("%s: %s; fetch or export the image again" % (path, problem))
    if cv2.imread(path) is None:
        raise ValueError("%s is not an image OpenCV can read (JPEG, PNG, BMP, ...); for a video, "
                         "extract its frames first" % path)


def _save(ax, out):
    from ..io import atomic_savefig
    ax.axis('off')
    atomic_savefig(ax.figure, out, bbox_inches='tight', dpi=100)
    print("wrote %s" % out)


def normalisation(name):
    """(mean, std) in 0..1 units for the input of ``name``: its published weights' preprocessing
    (the weights table's row of this very model), else GluonCV's ImageNet values, which the
    downstream training scripts use."""
    from ..registry import preprocess_of
    pp = preprocess_of(name, inherit=False)
    if pp is None:
        return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return tuple(v / 255.0 for v in pp.mean), tuple(v / 255.0 for v in pp.std)


def _detector(args, name, params, classes, filters=None):
    from ..registry import get_model
    name = _model_name(name, 'yolo3_', '_voc')
    kw = {}
    if filters:
        kw['filters'] = [int(c) for c in filters.split(',')]
    if classes:
        if not name.endswith('_custom'):
            name = name.rsplit('_', 1)[0] + '_custom'
        kw['classes'] = [c.strip() for c in classes.split(',') if c.strip()]
    net = get_model(name, pretrained=bool(getattr(args, 'pretrained', False)) and params is None, **kw)
    return name, net


def _detect(args):
    import matplotlib
    matplotlib.use('Agg')
    from gluoncv.data.transforms.presets.yolo import load_test
    from gluoncv.utils import viz
    _check_image(args.image, args.out)
    name, net = _detector(args, args.model, args.params, args.classes, args.filters)
    _load_weights(net, args, 'detector')
    mean, std = normalisation(name)
    x, img = load_test(args.image, short=args.short, stride=32, mean=mean, std=std)
    ids, scores, bboxes = [o[0].asnumpy() for o in net(x)]
    keep = scores[:, 0] >= args.thresh
    for cid, s, b in zip(ids[keep, 0], scores[keep, 0], bboxes[keep]):
        print("%-14s %.3f  %s" % (net.classes[int(cid)], s, ' '.join('%.1f' % v for v in b)))
    print("%d detection(s) >= %.2f with %s (input %dx%d)" % (keep.sum(), args.thresh, name,
                                                             x.shape[3], x.shape[2]))
    ax = viz.plot_bbox(img, bboxes, scores, ids, thresh=args.thresh, class_names=net.classes)
    _save(ax, args.out)
    return 0


def _parse_box(text, w, h):
    try:
        box = [float(v) for v in text.split(',')]
        assert len(box) == 4
    except (ValueError, AssertionError):
        raise ValueError("--box must be x0,y0,x1,y1 in pixels, got %r" % text)
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError("--box %s lies outside the %dx%d image or is empty" % (text, w, h))
    return box


def _pose(args):
    import matplotlib
    matplotlib.use('Agg')
    import numpy as np
    import mxnet as mx
    from gluoncv.data.transforms.pose import (crop_resize_normalize, heatmap_to_coord,
                                              detector_to_simple_pose)
    from gluoncv.data.transforms.presets.yolo import load_test
    from gluoncv.utils import viz
    from ..registry import get_model
    _check_image(args.image, args.out)
    name = args.model.lower()
    if not (name.startswith('simple_pose_') or name.startswith('mobile_pose_')):
        name = _model_name(name, 'simple_pose_')
    kw = {}
    if args.deconv_filters and name.startswith('simple_pose_'):
        kw['deconv_filters'] = tuple(int(c) for c in args.deconv_filters.split(','))
    net = get_model(name, pretrained=bool(args.pretrained) and not args.params, **kw)
    _load_weights(net, args, 'pose')
    mean, std = normalisation(name)
    h, w = args.input_size
    if args.detector:
        det_name, det = _detector(args, args.detector, args.detector_params, None)
        if args.detector_params:
            det.load_parameters(args.detector_params, ctx=mx.cpu())
        elif args.untrained:
            det.initialize()
        else:
            raise ValueError("--detector needs --detector-params FILE (or --untrained)")
        if 'person' not in det.classes:
            raise ValueError("detector %s has no 'person' class (classes: %s)" % (det_name, det.classes))
        det.reset_class(['person'], reuse_weights=['person'])
        dmean, dstd = normalisation(det_name)
        x, img = load_test(args.image, short=args.short, stride=32, mean=dmean, std=dstd)
        ids, scores, bboxes = det(x)
        pose_input, boxes = detector_to_simple_pose(img, ids, scores, bboxes, output_shape=(h, w),
                                                    thr=args.thresh, mean=mean, std=std)
        if pose_input is None:
            print("the detector found no person >= %.2f; nothing to draw" % args.thresh)
            ax = viz.plot_image(img)
            _save(ax, args.out)
            return 0
    else:
        img = mx.image.imread(args.image).asnumpy()
        ih, iw = img.shape[:2]
        boxes = [_parse_box(b, iw, ih) for b in args.box] if args.box else [[0.0, 0.0, float(iw), float(ih)]]
        pose_input = crop_resize_normalize(mx.nd.array(img), boxes, (h, w), mean=mean, std=std)
        ids = mx.nd.zeros((1, len(boxes), 1))
        scores = mx.nd.ones((1, len(boxes), 1))
        bboxes = mx.nd.array(np.array(boxes, dtype='float32')[None])
    with mx.autograd.predict_mode():
        heat = net(pose_input)
    coords, conf = heatmap_to_coord(heat, boxes)
    for i, (c, s) in enumerate(zip(coords.asnumpy(), conf.asnumpy())):
        print("person %d: %s" % (i, ' '.join('(%.0f,%.0f|%.2f)' % (p[0], p[1], q[0]) for p, q in zip(c, s))))
    ax = viz.plot_keypoints(img, coords, conf, ids, bboxes, scores, box_thresh=args.thresh,
                            keypoint_thresh=args.keypoint_thresh)
    _save(ax, args.out)
    return 0


def _embed(args):
    import numpy as np
    import mxnet as mx
    from ..registry import get_model
    from ..heads.arcface import embed_images, FaceEmbedding
    if not args.model.lower().startswith('arcface_'):
        raise ValueError("--model must be a face model (arcface_<backbone>, e.g. "
                         "arcface_asymmnet_large_1.0), got %r" % args.model)
    for p in args.images:
        if not os.path.isfile(p):
            raise FileNotFoundError("image %s does not exist" % p)
    check_weight_args(args, 'train_arcface --save-prefix writes PREFIX-embed.params', 'embeds')
    if args.output:
        from ..io import check_output_file
        npy = args.output if args.output.endswith('.npy') else args.output + '.npy'
        check_output_file(npy, '-o', args.force)
    net = get_model(args.model, embedding_size=args.embedding_size, input_size=args.input_size,
                    pretrained=bool(args.pretrained))
    if not isinstance(net, FaceEmbedding):
        raise ValueError("%s is not a face embedding model" % args.model)
    load_weights(net, args, mx.init.MSRAPrelu(), 'random weights, the embeddings mean nothing')
    emb = embed_images(net, list(args.images), flip=not args.no_flip)
    out = None
    if args.output:
        from ..io import atomic_target
        out = args.output if args.output.endswith('.npy') else args.output + '.npy'  # as np.save names it
        with atomic_target(out) as tmp:
            np.save(tmp, emb.astype('float32'))
    for p, e in zip(args.images, emb):
        print("%s\t%d-d\t%s ..." % (p, e.size, ' '.join('%+.4f' % v for v in e[:4])))
    if len(args.images) > 1:
        sim = emb @ emb.T
        print("cosine similarity to the first image: %s"
              % ' '.join('%.4f' % v for v in sim[0, 1:]))
    if out:
        print("wrote %s (%d x %d, L2-normalised)" % (out, emb.shape[0], emb.shape[1]))
    return 0


def add_commands(sub):
    p = sub.add_parser('detect', help='YOLOv3 detection on an image, boxes drawn to a PNG')
    p.add_argument('image')
    p.add_argument('--model', default='yolo3_asymmnet_large_1.0_voc',
                   help='yolo3_<backbone>_{voc,coco,custom} or a backbone name (-> _voc)')
    p.add_argument('--classes', default=None,
                   help='comma-separated class names of a custom-trained model (e.g. the folder\'s)')
    p.add_argument('--filters', type=A.width_list, default=None, help='detection-block widths the model was trained with '
                   '(train_yolo3 --filters; default GluonCV\'s 512,256,128)')
    add_weight_args(p, 'trained weights (train_yolo3 -best.params)')
    p.add_argument('--short', type=_SIZE,
                   default=416, help='resize the short side to this')
    p.add_argument('--thresh', type=A.fraction, default=0.5, help='score threshold for drawing')
    p.add_argument('--out', '-o', default='detections.png')
    p.set_defaults(func=_detect)

    p = sub.add_parser('pose', help='SimplePose keypoints on an image, skeletons drawn to a PNG')
    p.add_argument('image')
    p.add_argument('--model', default='simple_pose_asymmnet_large_1.0',
                   help='simple_pose_<backbone>, mobile_pose_<backbone> or a backbone name')
    p.add_argument('--deconv-filters', type=A.width_list, default=None,
                   help='simple_pose deconv widths the model was trained with (default 256,256,256)')
    add_weight_args(p, 'trained weights (train_simple_pose -best.params)')
    p.add_argument('--box', action='append', default=None, metavar='X0,Y0,X1,Y1',
                   help='person box(es) in pixels (default: the whole image); repeatable')
    p.add_argument('--detector', default=None, help='find people with this YOLOv3 model instead')
    p.add_argument('--detector-params', default=None)
    p.add_argument('--short', type=_SIZE,
                   default=416)
    p.add_argument('--input-size', type=A.positive_int, nargs=2, default=(256, 192), metavar=('H', 'W'))
    p.add_argument('--thresh', type=A.fraction, default=0.5, help='person box threshold')
    p.add_argument('--keypoint-thresh', type=A.fraction, default=0.2)
    p.add_argument('--out', '-o', default='pose.png')
    p.set_defaults(func=_pose)

    p = sub.add_parser('embed', help='L2-normalised face embedding(s) of image file(s)')
    p.add_argument('images', nargs='+', metavar='IMAGE', help='face crop(s), resized to 112x112')
    p.add_argument('--model', default='arcface_asymmnet_large_1.0')
    add_weight_args(p, 'trained weights (PREFIX-embed.params)')
    p.add_argument('--embedding-size', type=A.positive_int, default=512)
    p.add_argument('--input-size', type=_SIZE,
                   default=112)
    p.add_argument('--no-flip', action='store_true', help='do not add the mirror image\'s embedding')
    p.add_argument('--output', '-o', default=None, help='save the embeddings as .npy')
    p.add_argument('--force', action='store_true', help='replace an existing -o file')
    p.set_defaults(func=_embed)
