from devops_operator.main import main

main()
