"""`asymmzoo embed`: face embeddings with an ``arcface_*`` model (downstream.face)."""
import os

from ._weights import add_weight_args, check_weight_args, load_weights


def _embed(args):
    import numpy as np
    import mxnet as mx
    from ..registry import get_model
    try:
        from downstream.face import embed_images, FaceEmbedding
    except ImportError:  # pragma: no cover - asymmzoo installed without the downstream package
        raise ValueError("`asymmzoo embed` needs the downstream package (install asymmzoo from source)")
    if not args.model.lower().startswith('arcface_'):
        raise ValueError("--model must be a face model (arcface_<backbone>, e.g. "
                         "arcface_asymmnet_large_1.0), got %r" % args.model)
    for p in args.images:
        if not os.path.isfile(p):
            raise FileNotFoundError("image %s does not exist" % p)
    check_weight_args(args, 'train_arcface --save-prefix writes PREFIX-embed.params', 'embeds')
    net = get_model(args.model, embedding_size=args.embedding_size, input_size=args.input_size,
                    pretrained=bool(args.pretrained))
    if not isinstance(net, FaceEmbedding):
        raise ValueError("%s is not a face embedding model" % args.model)
    load_weights(net, args, mx.init.MSRAPrelu(), 'random weights, the embeddings mean nothing')
    emb = embed_images(net, list(args.images), flip=not args.no_flip)
    if args.output:
        from ..store import atomic_target
        out = args.output if args.output.endswith('.npy') else args.output + '.npy'  # as np.save names it
        with atomic_target(out) as tmp:
            np.save(tmp, emb.astype('float32'))
    for p, e in zip(args.images, emb):
        print("%s\t%d-d\t%s ..." % (p, e.size, ' '.join('%+.4f' % v for v in e[:4])))
    if len(args.images) > 1:
        sim = emb @ emb.T
        print("cosine similarity to the first image: %s"
              % ' '.join('%.4f' % v for v in sim[0, 1:]))
    if args.output:
        print("wrote %s (%d x %d, L2-normalised)" % (args.output, emb.shape[0], emb.shape[1]))
    return 0


def add_commands(sub):
    p = sub.add_parser('embed', help='L2-normalised face embedding(s) of image file(s)')
    p.add_argument('images', nargs='+', metavar='IMAGE', help='face crop(s), resized to 112x112')
    p.add_argument('--model', default='arcface_asymmnet_large_1.0')
    add_weight_args(p, 'trained weights (PREFIX-embed.params)')
    p.add_argument('--embedding-size', type=int, default=512)
    p.add_argument('--input-size', type=int, default=112)
    p.add_argument('--no-flip', action='store_true', help='do not add the mirror image\'s embedding')
    p.add_argument('--output', '-o', default=None, help='save the embeddings as .npy')
    p.set_defaults(func=_embed)
