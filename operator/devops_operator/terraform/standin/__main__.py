from devops_operator.terraform.standin.cli import main

main()
