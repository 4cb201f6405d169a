//! JPEG to pixels: the player's decoder (zune-jpeg straight to RGBA8, no
//! conversion pass), shared by the client engine, the tests and the
//! benchmarks.

/// Decode a JPEG straight to RGBA8.
pub fn decode_rgba(jpeg: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGBA)
        .set_max_width(8192)
        .set_max_height(8192);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no image header")?;
    let (w, h) = (info.width as u32, info.height as u32);
    if pixels.len() != (w * h * 4) as usize {
        return Err(format!("decoded {} bytes for {w}x{h} RGBA", pixels.len()));
    }
    Ok((w, h, pixels))
}
