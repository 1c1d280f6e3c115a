from deploygen.cli import main

main()
