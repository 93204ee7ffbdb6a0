variable "vnet_address_space" {
  description = "Address space of the environment's virtual network (serving runs in its `apps` subnet)."
  type        = string
  default     = "10.40.0.0/16"
}

locals {
  # Subnets admitted by the storage and key vault firewalls (serving reads models and batch data from them).
  trusted_subnet_ids = [azurerm_subnet.apps.id]
}

# The environment's virtual network. Serving (Container Apps) runs in the `apps` subnet, whose service endpoints
# let the storage account and key vault firewalls admit it while denying the internet.

resource "azurerm_virtual_network" "main" {
  name                = "${local.name}-vnet"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  address_space       = [var.vnet_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "apps" {
  name                 = "apps"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  # A /23 leaves room for the Container Apps environment's infrastructure and replicas as it scales.
  address_prefixes  = [cidrsubnet(var.vnet_address_space, 7, 0)]
  service_endpoints = ["Microsoft.Storage", "Microsoft.KeyVault"]

  delegation {
    name = "container-apps"

    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

# Inbound from the internet: HTTPS to the Container Apps ingress only (plain HTTP is not admitted at all). The
# default rules still admit the Azure load balancer's health probes and traffic inside the virtual network.
resource "azurerm_network_security_group" "apps" {
  name                = "${local.name}-apps-nsg"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "allow-https-inbound"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "Internet"
    destination_address_prefix = "VirtualNetwork"
  }
}

resource "azurerm_subnet_network_security_group_association" "apps" {
  subnet_id                 = azurerm_subnet.apps.id
  network_security_group_id = azurerm_network_security_group.apps.id
}
