"""``python -m skdynal``: the ``skdynal`` command line."""

if __name__ == "__main__":  # not when a spawned benchmark worker imports it as __mp_main__
    import signal

    from ._interrupt import exit_now

    # A Ctrl-C while the command line is imported ends it with one line, exit status 130
    # (nothing is written yet); main() takes over from here.
    signal.signal(signal.SIGINT, exit_now)
    from .cli import main

    raise SystemExit(main())
