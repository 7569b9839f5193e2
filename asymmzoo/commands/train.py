"""`asymmzoo train`, `asymmzoo launch`, `asymmzoo pack`."""
import os
import sys

from ..utils import argtypes as A


def _train(args):
    from ..train.cli import run_args
    return run_args(args, prog='asymmzoo train')


def _launch(args):
    from ..launch import launch_local, cluster_commands, LaunchError
    cmd = list(args.cmd)
    if cmd and cmd[0] == '--':
        cmd = cmd[1:]
    if not cmd:
        raise ValueError("no worker command: asymmzoo launch -n 2 -s 1 -- python train_imagenet.py "
                         "--kvstore dist_sync --save-dir runs/dist")
    if args.hosts:
        hosts = [h.strip() for h in args.hosts.split(',') if h.strip()]
        if len(hosts) == 1 and os.path.isfile(hosts[0]):
            with open(hosts[0]) as f:
                hosts = [h.strip() for h in f if h.strip() and not h.startswith('#')]
            if not hosts:
                raise ValueError("host file %s lists no hosts (one per line)" % args.hosts)
        elif len(hosts) == 1 and ('/' in hosts[0] or hosts[0].endswith(('.txt', '.lst', '.hosts'))):
            raise FileNotFoundError("host file %s does not exist (-H takes host1,host2,... or a file "
                                    "with one host per line)" % hosts[0])
        for host, role, line in cluster_commands(cmd, hosts, args.num_workers, args.num_servers,
                                                 args.port or 9091):
            print("# on %s (%s)\n%s" % (host, role, line))
        return 0
    try:
        launch_local(cmd, args.num_workers, args.num_servers, port=args.port, timeout=args.timeout,
                     log_dir=args.log_dir)
    except LaunchError as e:
        print("asymmzoo launch: error: %s" % e, file=sys.stderr)
        return 1
    return 0


def _pack(args):
    from ..data.folder import check_image_folder, pack_folder, scan_split
    src = args.src
    splits = ['train', 'val'] if os.path.isdir(os.path.join(src, 'train')) else [None]
    if splits[0]:
        check_image_folder(src)  # same class folders in train and val, or a clear error
    names = [split or os.path.basename(os.path.normpath(src)) for split in splits]
    there = [os.path.join(args.dst, n + ext) for n in names for ext in ('.rec', '.idx', '.lst')
             if os.path.exists(os.path.join(args.dst, n + ext))]
    if there and not args.force:
        raise ValueError("%s already holds %s; pass --force to replace them, or choose another "
                         "output folder" % (args.dst, ', '.join(os.path.basename(t) for t in there)))
    from ..io import check_writable_folder, made_folder
    if not os.path.isdir(src):
        raise ValueError("%s is not a folder of images (<class>/*.jpg, or train/ and val/ with them)" % src)
    if os.path.exists(args.dst) and not os.path.isdir(args.dst):
        raise ValueError("the output %s is a file; give a folder (made if missing)" % args.dst)
    check_writable_folder(args.dst, 'the output %s' % args.dst)
    flags, results = [], []
    with made_folder(args.dst):   # a failed pack takes back the folder it made
        for split in splits:
            folder = os.path.join(src, split) if split else src
            name = split or os.path.basename(os.path.normpath(src))
            results.append((split, name, pack_folder(folder, os.path.join(args.dst, name), resize=args.resize,
                                                     quality=args.quality, shuffle=args.shuffle,
                                                     progress=not args.quiet)))
    for split, name, res in results:
        print("%s: packed %d images of %d classes into %s%s" % (
            name, res['packed'], len(res['classes']), res['rec'],
            ("; skipped %d that do not decode: %s" % (len(res['skipped']), ', '.join(res['skipped'][:5])))
            if res['skipped'] else ''))
        if split:
            flags += ['--rec-%s %s --rec-%s-idx %s' % (split, res['rec'], split, res['idx'])]
    if flags:
        print("train with: python train_imagenet.py " + ' '.join(flags))
    return 0


def add_commands(sub):
    from ..train.cli import add_arguments
    p = sub.add_parser('train', help='train / evaluate a model (the flags of train_imagenet.py)')
    add_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser('launch', help="run a distributed (ps-lite / kvstore dist_sync) job: "
                                      "locally on 127.0.0.1, or print the per-host commands")
    p.add_argument('-n', '--num-workers', type=A.positive_int, required=True)
    p.add_argument('-s', '--num-servers', type=A.positive_int, default=1)
    p.add_argument('--port', type=A.checked(int, lambda v: 1 <= v <= 65535, 'a TCP port'), default=None,
                   help='scheduler port (default: a free one)')
    p.add_argument('--timeout', type=A.positive_float, default=None,
                   help='stop the whole job after this many s')
    p.add_argument('--log-dir', default=None, help='one log file per process instead of the terminal')
    p.add_argument('-H', '--hosts', default=None,
                   help='comma-separated hosts or a host file: print the command for each host')
    p.add_argument('cmd', nargs='...', help='-- worker command')
    p.set_defaults(func=_launch)

    p = sub.add_parser('pack', help='pack an ImageFolder (train/ + val/, or one split) into RecordIO')
    p.add_argument('src', help='ImageFolder root with train/ and val/, or one split folder')
    p.add_argument('dst', help='output folder: <split>.rec / .idx / .lst')
    p.add_argument('--resize', type=A.non_negative_int, default=0,
                   help='resize the shorter side first (0 = keep)')
    p.add_argument('--quality', type=A.checked(int, lambda v: 1 <= v <= 100, 'a JPEG quality in 1..100'),
                   default=95, help='JPEG quality')
    p.add_argument('--shuffle', action='store_true', help='shuffle the record order (seed 0)')
    p.add_argument('--force', action='store_true', help='replace .rec / .idx / .lst files already in dst')
    p.add_argument('-q', '--quiet', action='store_true')
    p.set_defaults(func=_pack)
