"""Task entry point: thin by design; the work lives in autopot.tasklib.select."""

from autopot.tasklib.select import main

if __name__ == "__main__":
    main()
