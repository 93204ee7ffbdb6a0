terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: `make infra-init ENV=<env>` passes envs/<env>.backend.hcl (see README.md, "State").
  backend "s3" {}
}
