"""`python -m gan.train`: the one command line for training (one process, torchrun, --stream)."""

from gan.train.cli import main

if __name__ == "__main__":
    main()
