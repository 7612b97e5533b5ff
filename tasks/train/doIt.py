"""Task entry point: thin by design; the work lives in autopot.tasklib.train."""

from autopot.tasklib.train import main

if __name__ == "__main__":
    main()
