"""Task entry point: thin by design; the work lives in autopot.tasklib.md_select."""

from autopot.tasklib.md_select import main

if __name__ == "__main__":
    main()
