# What the mocked azurerm provider returns for the data sources (terraform test reads no real subscription). The
# provider still validates every argument, so the values have the shapes Azure returns.

mock_data "azurerm_client_config" {
  defaults = {
    subscription_id = "00000000-0000-0000-0000-000000000001"
    tenant_id       = "00000000-0000-0000-0000-000000000002"
    object_id       = "00000000-0000-0000-0000-000000000003"
    client_id       = "00000000-0000-0000-0000-000000000004"
  }
}
